"""Where events come from: the streaming source (CometD) and the polling source (SOQL)."""

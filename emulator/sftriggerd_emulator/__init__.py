"""A local Salesforce org for the demo and the tests: OAuth, REST, Streaming API, faults.

Never imported by the daemon core; `sftriggerd emulator` and the tests start it.
"""

// A real Bayeux server nobody here wrote (faye), on loopback, for our client's tests.
// Usage: node faye_server.js PORT — prints "ready" when listening. POST /publish {channel, data}
// publishes through faye's own server-side client.
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(new URL("../../../emulator/tests/conformance/package.json", import.meta.url));
const faye = require("faye");

const port = Number(process.argv[2]);
const bayeux = new faye.NodeAdapter({ mount: "/bayeux", timeout: 2 });
const server = http.createServer((request, response) => {
  if (request.method === "POST" && request.url === "/publish") {
    let body = "";
    request.on("data", (chunk) => { body += chunk; });
    request.on("end", () => {
      const { channel, data } = JSON.parse(body);
      bayeux.getClient().publish(channel, data).then(
        () => { response.writeHead(200); response.end("{}"); },
        (error) => { response.writeHead(500); response.end(String(error)); },
      );
    });
    return;
  }
  response.writeHead(404);
  response.end();
});
bayeux.attach(server);
server.listen(port, "127.0.0.1", () => console.log("ready"));

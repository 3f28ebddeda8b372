// Drives the emulator's Streaming API with the official CometD JavaScript client.
//
// Usage: node cometd_client.js <emulator-url> <access-token>
//
// Creates an Account, handshakes, subscribes to /data/AccountChangeEvent replaying all
// retained events (ext.replay -2, set by an extension as Salesforce's own samples do),
// receives it and a live one, then makes the emulator forget every client. The client must
// follow the 403::Unknown client advice, re-handshake, and resubscribe from the last replay
// id it saw, receiving the event created meanwhile exactly once. Prints one JSON document
// on stdout; exits 1 when the scenario does not complete in time.

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";

adapt();

const [baseUrl, token] = process.argv.slice(2);
if (!baseUrl || !token) {
    console.error("usage: node cometd_client.js <emulator-url> <access-token>");
    process.exit(2);
}

const CHANNEL = "/data/AccountChangeEvent";
const API = `${baseUrl}/services/data/v60.0`;
const result = { created: [], handshakes: [], subscribes: [], connectErrors: [], events: [] };
let lastReplayId = -2;

async function post(url, body, headers = {}) {
    const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
        throw new Error(`POST ${url} answered ${response.status}: ${text}`);
    }
    return JSON.parse(text);
}

async function createAccount(name) {
    const answer = await post(`${API}/sobjects/Account`, { Name: name }, {
        Authorization: `Bearer ${token}`,
    });
    result.created.push(answer.id);
    return answer.id;
}

async function waitFor(what, predicate, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
        if (Date.now() > deadline) {
            throw new Error(`timed out waiting for ${what}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

// The replay extension: Salesforce reads the starting point of each subscription here.
class ReplayExtension {
    outgoing(message) {
        if (message.channel === "/meta/subscribe") {
            message.ext = { ...(message.ext || {}), replay: { [message.subscription]: lastReplayId } };
        }
        return message;
    }
}

const cometd = new CometD();
// Salesforce serves long-polling only; its own samples switch websocket off the same way.
cometd.unregisterTransport("websocket");
cometd.configure({
    url: `${baseUrl}/cometd/60.0`,
    requestHeaders: { Authorization: `Bearer ${token}` },
    logLevel: "warn",
});
cometd.registerExtension("replay", new ReplayExtension());

function onEvent(message) {
    const header = message.data.payload.ChangeEventHeader;
    lastReplayId = message.data.event.replayId;
    result.events.push({
        channel: message.channel,
        replayId: message.data.event.replayId,
        changeType: header.changeType,
        recordIds: header.recordIds,
        name: message.data.payload.Name,
    });
}

// A handshake drops every subscription on the server: subscribe again after each one.
cometd.addListener("/meta/handshake", (message) => {
    result.handshakes.push({ successful: message.successful, reestablish: message.reestablish });
    if (message.successful) {
        cometd.subscribe(CHANNEL, onEvent, (reply) => {
            result.subscribes.push({ successful: reply.successful, error: reply.error || null });
        });
    }
});
cometd.addListener("/meta/connect", (message) => {
    if (!message.successful) {
        result.connectErrors.push(message.error || "transport failure");
    }
});

async function main() {
    await createAccount("before subscribing");
    cometd.handshake();
    await waitFor("the replayed event", () => result.events.length >= 1);
    await createAccount("live");
    await waitFor("the live event", () => result.events.length >= 2);
    await post(`${baseUrl}/_emulator/clients/forget`, {});
    await createAccount("while forgotten");
    await waitFor("the re-handshake", () => result.handshakes.length >= 2);
    await waitFor("the event missed while forgotten", () => result.events.length >= 3);
    // Anything after the third would be a duplicate; give it a moment to show up.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await new Promise((resolve) => cometd.disconnect(() => resolve()));
}

const watchdog = setTimeout(() => {
    result.error = "watchdog: the scenario took longer than 40 s";
    console.log(JSON.stringify(result));
    process.exit(1);
}, 40000);

main().then(
    () => {
        clearTimeout(watchdog);
        console.log(JSON.stringify(result));
        process.exit(0);
    },
    (error) => {
        clearTimeout(watchdog);
        result.error = String(error && error.stack ? error.stack : error);
        console.log(JSON.stringify(result));
        process.exit(1);
    },
);

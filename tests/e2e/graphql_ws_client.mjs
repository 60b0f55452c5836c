// A subscriber written by others: the `graphql-ws` client (npm) over the `ws` WebSocket, run
// against a server: `node graphql_ws_client.mjs <ws URL> <query> <events> <timeout s> [variables]`.
//
// Prints one JSON object per line on stdout: {"event": "connected"} once the server acknowledged
// the connection; {"event": "next", "payload": ...} for each result; {"event": "error", ...} for
// an error the client reports; and last {"event": "done", "reason": ..., "textFrames": n,
// "binaryFrames": n}, counting the frames the server sent. Exits 0 after <events> results, 1 on
// the time-out, an error, or an early end of the subscription, 2 on bad usage. Needs Node 20
// and `npm ci --prefix tests/e2e/node`.
import { createRequire } from "node:module";

// Resolved from the npm project beside this file (tests/e2e/node), whatever the working directory.
const require = createRequire(new URL("./node/package.json", import.meta.url));
const { createClient } = require("graphql-ws");
const WebSocket = require("ws");

const [url, query, events, timeoutSeconds, variables] = process.argv.slice(2);
const wanted = Number(events);
if (!url || !query || !Number.isInteger(wanted) || !(Number(timeoutSeconds) > 0)) {
  console.error("usage: node graphql_ws_client.mjs <ws URL> <query> <events> <timeout s> [vars]");
  process.exit(2);
}

const frames = { text: 0, binary: 0 };

// The `ws` WebSocket, counting what kind of frame each message from the server came in.
class CountingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.on("message", (_data, isBinary) => {
      frames[isBinary ? "binary" : "text"] += 1;
    });
  }
}

const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const client = createClient({
  url,
  webSocketImpl: CountingWebSocket,
  lazy: false,
  retryAttempts: 0,
  on: {
    connected: () => print({ event: "connected" }),
    error: (error) => print({ event: "error", where: "socket", error: String(error?.message ?? error) }),
    closed: (event) => {
      if (event?.code !== 1000) print({ event: "closed", code: event?.code, reason: event?.reason });
    },
  },
});

let received = 0;
let finished = false;

async function finish(reason, status) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  await client.dispose();
  print({ event: "done", reason, received, textFrames: frames.text, binaryFrames: frames.binary });
  process.exit(status);
}

const timer = setTimeout(() => finish("timeout", 1), Number(timeoutSeconds) * 1000);

client.subscribe(
  { query, variables: variables ? JSON.parse(variables) : undefined },
  {
    next: (payload) => {
      received += 1;
      print({ event: "next", payload });
      if (received >= wanted) finish("received", 0);
    },
    error: (error) => {
      const errors = Array.isArray(error) ? error : [{ message: String(error?.message ?? error) }];
      print({ event: "error", where: "operation", errors });
      finish("error", 1);
    },
    complete: () => finish("complete", received >= wanted ? 0 : 1),
  },
);

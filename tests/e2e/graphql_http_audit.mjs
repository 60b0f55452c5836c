// The GraphQL-over-HTTP conformance audit of the `graphql-http` package (npm), run against a
// server: `node graphql_http_audit.mjs http://127.0.0.1:8000/graphql`.
//
// Prints one JSON array on stdout: every audit's id, name (starting with MUST, SHOULD or MAY),
// status ("ok", "notice", "warn" or "error") and, unless ok, the reason and the status and
// body of the response it judged. Exits 0 whenever the audit ran (judging the results is the
// caller's job), 2 on bad usage or when the audit itself could not run. Needs Node 18 or later
// (the global fetch) and `npm ci --prefix tests/e2e/node`.
import { createRequire } from "node:module";

// Resolved from the npm project beside this file (tests/e2e/node), whatever the working directory.
const require = createRequire(new URL("./node/package.json", import.meta.url));
const { auditServer } = require("graphql-http");

const url = process.argv[2];
if (!url) {
  console.error("usage: node graphql_http_audit.mjs <graphql endpoint URL>");
  process.exit(2);
}

async function describe(result) {
  const out = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    out.reason = result.reason;
    if (result.response) {
      out.responseStatus = result.response.status;
      out.responseType = result.response.headers.get("content-type");
      try {
        out.responseBody = (await result.response.text()).slice(0, 500);
      } catch {
        out.responseBody = null; // already read by the audit
      }
    }
  }
  return out;
}

try {
  const results = await auditServer({ url });
  const described = [];
  for (const result of results) {
    described.push(await describe(result));
  }
  process.stdout.write(JSON.stringify(described, null, 2) + "\n");
} catch (error) {
  console.error(`the audit could not run: ${error?.stack ?? error}`);
  process.exit(2);
}

// Call one operation of a hes-sim SOAP service with Node's `soap` package, as an MDMS written in
// Node would: build the client from the WSDL URL, send the arguments, print the decoded answer.
// usage: node call.js WSDL_URL OPERATION ARGS_JSON [ENDPOINT]
"use strict";
const soap = require("soap");

async function main() {
  const [wsdl, operation, argsJson, endpoint] = process.argv.slice(2);
  const options = endpoint ? { endpoint } : {};
  const client = await soap.createClientAsync(wsdl, options);
  const args = JSON.parse(argsJson);
  try {
    const [result, rawResponse] = await client[operation + "Async"](args);
    process.stdout.write(JSON.stringify({ ok: true, result, raw: rawResponse }));
  } catch (err) {
    const body = err.body || (err.response && err.response.data) || "";
    process.stdout.write(JSON.stringify({ ok: false, message: String(err.message || err), fault: err.root || null, raw: body }));
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});

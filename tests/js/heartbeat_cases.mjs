// Runs Data Pipeline calls with the AWS SDK for JavaScript v3 against an endpoint.
// Usage: node heartbeat_cases.mjs ENDPOINT '[{"command": "ReportTaskRunnerHeartbeat", "input": {...}}, ...]' [OPTIONS]
// OPTIONS (JSON, optional): client settings such as {"maxAttempts": 3, "systemClockOffset": -600000}.
// Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when set (an issued key), else placeholders.
// A case may carry "authorization": a value that replaces the signed Authorization header after signing
// ("" removes it), to send what no SDK would.
// Prints one JSON line: a result per case, {ok, output | name, message, fault, status, requestId, attempts}.
import {
  DataPipelineClient,
  PollForTaskCommand,
  ReportTaskRunnerHeartbeatCommand,
} from "@aws-sdk/client-data-pipeline";

const [endpoint, casesJson, optionsJson] = process.argv.slice(2);
const commands = { ReportTaskRunnerHeartbeat: ReportTaskRunnerHeartbeatCommand, PollForTask: PollForTaskCommand };
const credentials = process.env.AWS_ACCESS_KEY_ID
  ? { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY }
  : { accessKeyId: "testing", secretAccessKey: "testing" };
const client = new DataPipelineClient({
  endpoint,
  region: "us-east-1",
  credentials,
  maxAttempts: 1,
  ...JSON.parse(optionsJson || "{}"),
});

let authorization;
client.middlewareStack.addRelativeTo(
  (next) => async (args) => {
    if (authorization !== undefined) {
      for (const name of Object.keys(args.request.headers)) {
        if (name.toLowerCase() === "authorization") delete args.request.headers[name];
      }
      if (authorization !== "") args.request.headers.authorization = authorization;
    }
    return next(args);
  },
  { relation: "after", toMiddleware: "httpSigningMiddleware", name: "tamperAfterSigning" },
);

const results = [];
for (const { command, input, authorization: replaced } of JSON.parse(casesJson)) {
  authorization = replaced;
  try {
    const output = await client.send(new commands[command](input));
    const { $metadata, ...rest } = output;
    results.push({
      ok: true,
      output: rest,
      status: $metadata.httpStatusCode,
      requestId: $metadata.requestId,
      attempts: $metadata.attempts,
    });
  } catch (error) {
    results.push({
      ok: false,
      name: error.name,
      message: error.message,
      fault: error.$fault,
      status: error.$metadata?.httpStatusCode,
      requestId: error.$metadata?.requestId,
      attempts: error.$metadata?.attempts,
    });
  }
}
console.log(JSON.stringify(results));

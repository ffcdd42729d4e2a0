// Calls chain.get_head_info over the Koinos bus with amqplib, the way any
// Node.js program can talk to Koinos microservices (docs/bus.md), with the
// protobuf bytes built and read by hand: no generated code.
// Usage: node amqp_head.js AMQP_URL [RPC_EXCHANGE [ROUTING_KEY]]
// Prints one JSON line; node/amqp_test.go checks it.
const amqplib = require("amqplib");
const { fields } = require("./protowire");
const crypto = require("crypto");

// chain_request { get_head_info (field 4, length-delimited) = {} }
const REQUEST = Buffer.from([(4 << 3) | 2, 0x00]);

async function main() {
  const [url, exchange = "koinos.rpc", key = "koinos.rpc.chain"] = process.argv.slice(2);
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  // A reply queue as Koinos's clients make one: server-named, exclusive,
  // auto-delete, bound to koinos.rpc under its own name.
  const { queue } = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
  await ch.bindQueue(queue, exchange, queue);
  const correlationId = crypto.randomBytes(16).toString("hex");
  const reply = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no reply within 5 s")), 5000);
    ch.consume(queue, (msg) => {
      if (msg && msg.properties.correlationId === correlationId) {
        clearTimeout(timer);
        resolve(msg);
      }
    }, { noAck: true });
  });
  ch.publish(exchange, key, REQUEST, {
    contentType: "application/octet-stream", correlationId, replyTo: queue, expiration: "5000",
  });
  const msg = await reply;
  const resp = fields(msg.content); // chain_response
  if (resp[2]) throw new Error("error_status: " + fields(resp[2])[1].toString());
  const info = fields(resp[5]); // get_head_info_response
  const topo = fields(info[1]); // block_topology
  console.log(JSON.stringify({
    height: (topo[2] || 0n).toString(),
    id: "0x" + Buffer.from(topo[1] || []).toString("hex"),
    lib: (info[2] || 0n).toString(),
    contentType: msg.properties.contentType,
    correlated: msg.properties.correlationId === correlationId,
  }));
  await conn.close();
}

main().catch((e) => {
  console.error("amqplib:", e && e.stack ? e.stack : e);
  process.exit(1);
});

// Subscribes to the Koinos bus's koinos.event exchange with amqplib, as any
// Node.js indexer can (docs/bus.md), and reads block events with the
// protobuf bytes taken apart by hand: no generated code.
// Usage: node amqp_events.js AMQP_URL [EVENT_EXCHANGE [COUNT]]
// Waits for COUNT (default 10) koinos.block.accept events and prints one
// JSON line; node/bus_test.go checks it.
const amqplib = require("amqplib");
const { fields } = require("./protowire");

async function main() {
  const [url, exchange = "koinos.event", count = "10"] = process.argv.slice(2);
  const want = Number(count);
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, "topic", { durable: true });
  const { queue } = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
  await ch.bindQueue(queue, exchange, "koinos.block.*");
  await ch.prefetch(64);
  const accepted = [], irreversible = [], seqs = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${accepted.length} blocks within 20 s`)), 20000);
    ch.consume(queue, (msg) => {
      seqs.push(Number(msg.properties.headers["x-ember-seq"]));
      if (msg.fields.routingKey === "koinos.block.accept") {
        const header = fields(fields(fields(msg.content)[1])[2]); // block_accepted.block.header
        accepted.push(Number(header[2] || 0n));
      } else if (msg.fields.routingKey === "koinos.block.irreversible") {
        const topo = fields(fields(msg.content)[1]); // block_irreversible.topology
        irreversible.push(Number(topo[2] || 0n));
      }
      ch.ack(msg);
      if (accepted.length >= want) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  console.log(JSON.stringify({ accepted, irreversible, seqs, contentType: "application/octet-stream" }));
  await conn.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

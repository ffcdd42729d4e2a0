// Measures how late block events reach a koinos.event subscriber: for each
// koinos.block.accept, the time from the block's timestamp to its arrival.
// Used beside `ember bench` (docs/benchmarks.md, "Issue 13").
// Usage: node amqp_lag.js AMQP_URL SECONDS [EVENT_EXCHANGE]
// Prints one JSON line: blocks seen, lag p50/p99/max in ms, block interval.
const amqplib = require("amqplib");
const { fields } = require("./protowire");

async function main() {
  const [url, seconds = "30", exchange = "koinos.event"] = process.argv.slice(2);
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, "topic", { durable: true });
  const { queue } = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
  await ch.bindQueue(queue, exchange, "koinos.block.accept");
  const lags = [], times = [];
  await ch.consume(queue, (msg) => {
    const now = Date.now();
    const block = fields(fields(msg.content)[1]); // block_accepted.block
    const header = fields(block[2]);
    const ts = Number(header[3] || 0n);
    lags.push(now - ts);
    times.push(ts);
  }, { noAck: true });
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  await conn.close();
  lags.sort((a, b) => a - b);
  const q = (p) => (lags.length ? lags[Math.min(lags.length - 1, Math.floor(p * lags.length))] : null);
  const interval = times.length > 1 ? (times[times.length - 1] - times[0]) / (times.length - 1) : null;
  console.log(JSON.stringify({ blocks: lags.length, p50: q(0.5), p99: q(0.99), max: lags[lags.length - 1] ?? null, intervalMs: interval }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

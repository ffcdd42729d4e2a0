// Reads the contracts' ABIs as koilib's Contract does (methods,
// entry_point, events, "types" turned back into .proto text) and encodes
// and decodes with them: internal/sdkas TestABIKoilib runs it with
// NODE_PATH at node/testdata/koilib's node_modules. Prints JSON: the
// accounts used, each write operation as koilib would put it in a
// transaction, and results and events decoded.
// Usage: node koilib_abi.js ABI_DIR INPUT_JSON
// INPUT_JSON holds hex: balance (a balance_of result), transferEvent and
// putEvent (event data as the contracts emit it).
const fs = require("fs");
const path = require("path");
const { Contract, Signer, utils } = require("koilib");

async function main() {
  const readAbi = (name) => JSON.parse(fs.readFileSync(path.join(process.argv[2], name + ".abi"), "utf8"));
  const input = JSON.parse(process.argv[3]);
  const fromHex = (h) => Buffer.from(h, "hex");
  const hex = (b) => Buffer.from(b).toString("hex");
  const from = Signer.fromSeed("sdkas from").getAddress();
  const to = Signer.fromSeed("sdkas to").getAddress();
  const token = new Contract({ id: to, abi: readAbi("token") });
  const kv = new Contract({ id: from, abi: readAbi("kvstore") });
  const op = async (contract, name, args) => {
    const { call_contract: c } = await contract.encodeOperation({ name, args });
    return { entry_point: c.entry_point, args: hex(utils.decodeBase64url(c.args)) };
  };
  const event = async (contract, name, data) =>
    (await contract.decodeEvent({ name, data: utils.encodeBase64url(fromHex(data)), impacted: [] })).args;
  const out = {
    from: hex(utils.decodeBase58(from)),
    to: hex(utils.decodeBase58(to)),
    token_functions: Object.keys(token.functions).sort(),
    kvstore_functions: Object.keys(kv.functions).sort(),
    transfer: await op(token, "transfer", { from, to, value: "1234567890123" }),
    mint: await op(token, "mint", { to, value: "42" }),
    burn: await op(token, "burn", { from, value: "7" }),
    balance_of: await op(token, "balance_of", { owner: from }),
    put: await op(kv, "put", { key: "greeting", value: utils.encodeBase64url(Buffer.from("hello")) }),
    balance: await token.serializer.deserialize(fromHex(input.balance), token.abi.methods.balance_of.return),
    transfer_event: await event(token, "token.transfer_event", input.transferEvent),
    put_event: await event(kv, "kvstore.put_event", input.putEvent),
  };
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Reads a contract ABI as koilib's Contract does (methods, entry_point,
// "types" turned back into .proto text) and encodes with it: internal/sdkas
// TestTokenABIKoilib runs it with NODE_PATH at node/testdata/koilib's
// node_modules. Prints JSON: the accounts used, each write operation as
// koilib would put it in a transaction, and a result decoded.
// Usage: node koilib_abi.js ABI_FILE BALANCE_OF_RESULT_HEX
const fs = require("fs");
const { Contract, Signer, utils } = require("koilib");

async function main() {
  const abi = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const from = Signer.fromSeed("sdkas from").getAddress();
  const to = Signer.fromSeed("sdkas to").getAddress();
  const contract = new Contract({ id: to, abi });
  const hex = (b) => Buffer.from(b).toString("hex");
  const op = async (name, args) => {
    const { call_contract: c } = await contract.encodeOperation({ name, args });
    return { entry_point: c.entry_point, args: hex(utils.decodeBase64url(c.args)) };
  };
  const out = {
    from: hex(utils.decodeBase58(from)),
    to: hex(utils.decodeBase58(to)),
    functions: Object.keys(contract.functions).sort(),
    transfer: await op("transfer", { from, to, value: "1234567890123" }),
    mint: await op("mint", { to, value: "42" }),
    burn: await op("burn", { from, value: "7" }),
    balance_of: await op("balance_of", { owner: from }),
    balance: await contract.serializer.deserialize(
      Buffer.from(process.argv[3], "hex"),
      abi.methods.balance_of.return
    ),
  };
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

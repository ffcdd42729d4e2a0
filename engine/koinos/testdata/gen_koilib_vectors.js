// Generates engine/koinos/testdata/koilib_vectors.json with koilib itself.
const { Signer, Contract, Transaction, utils } = require("koilib");

async function main() {
  const chainId = utils.encodeBase64url(utils.multihash(new TextEncoder().encode("ember-test-chain")));
  const tokenId = "1FaSvLjQJsCJKq5ybmGsMMQs8RQYyVv8ju";
  const out = [];
  const cases = [
    { seed: "ember-vector-1", to: "1LNdkUJ5kGHrnivKTXdUDzhbAKvGr9jfpV", value: "1000", nonce: 1, rc: "100000000" },
    { seed: "ember-vector-2", to: "1LNdkUJ5kGHrnivKTXdUDzhbAKvGr9jfpV", value: "123456789012", nonce: 300, rc: "5000000000", payee: true },
    { seed: "ember-vector-3", to: "1GM8jZdDMbVE6JqXRKJUf1EQFpmLSco2t8", value: "1", nonce: 129, rc: "1", two: true },
  ];
  for (const c of cases) {
    const signer = Signer.fromSeed(c.seed);
    const token = new Contract({ id: tokenId, abi: utils.tokenAbi, signer });
    const { operation } = await token.functions.transfer(
      { from: signer.getAddress(), to: c.to, value: c.value },
      { onlyOperation: true }
    );
    const ops = [operation];
    if (c.two) {
      const r = await token.functions.transfer({ from: signer.getAddress(), to: signer.getAddress(), value: "7" }, { onlyOperation: true });
      ops.push(r.operation);
    }
    const nonce = utils.encodeBase64url(
      require(require("path").join(require("path").dirname(require.resolve("koilib")), "protoModules/protocol-proto.js")).koinos.chain.value_type.encode({ uint64_value: String(c.nonce) }).finish()
    );
    const tx = new Transaction({
      signer,
      options: { chainId, rcLimit: c.rc, nonce, payer: signer.getAddress(), ...(c.payee && { payee: "1GM8jZdDMbVE6JqXRKJUf1EQFpmLSco2t8" }) },
    });
    for (const op of ops) await tx.pushOperation(op);
    await tx.prepare();
    await tx.sign();
    out.push({
      description: `koilib ${require(require("path").join(require("path").dirname(require.resolve("koilib")), "..", "package.json")).version}: seed ${c.seed}, nonce ${c.nonce}, ${ops.length} transfer op(s)`,
      private_key_wif: signer.getPrivateKey("wif"),
      address: signer.getAddress(),
      nonce: c.nonce,
      transaction: tx.transaction,
      id: tx.transaction.id,
      signature: tx.transaction.signatures[0],
    });
  }
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
}
main().catch((e) => { console.error(e); process.exit(1); });

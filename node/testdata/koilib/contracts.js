// A Koinos developer's contract workflow with koilib against an Ember node,
// unmodified: deploy AssemblyScript contracts built with @koinos/sdk-as
// (Contract.deploy: an upload_contract with the bytecode and the ABI), call
// them through koilib's generated functions, read them (chain.read_contract),
// decode their events, and fetch their ABI back from the node
// (contract_meta_store.get_contract_meta).
// Usage: node contracts.js RPC_URL TOKEN_WIF KV_WIF USER_WIF RECIPIENT TOKEN_WASM TOKEN_ABI KV_WASM KV_ABI
// TOKEN_WIF and KV_WIF are the contracts' own accounts (a contract's id is
// the address of the key that deploys it). Prints one JSON line with what
// it saw; node/contracts_test.go checks it.
const fs = require("fs");
const { Signer, Provider, Contract } = require("koilib");

async function deploy(provider, wif, wasmPath, abiPath) {
  const signer = Signer.fromWif(wif);
  signer.provider = provider;
  const abi = JSON.parse(fs.readFileSync(abiPath, "utf8"));
  const bytecode = new Uint8Array(fs.readFileSync(wasmPath));
  const contract = new Contract({ signer, provider, bytecode, abi });
  const { transaction, receipt } = await contract.deploy({ abi: JSON.stringify(abi) });
  await transaction.wait("byTransactionId", 30000);
  return { contract, abi, receipt };
}

// sent submits a call, waits for its block and returns its receipt.
async function sent(call) {
  const { transaction, receipt } = await call;
  await transaction.wait("byTransactionId", 30000);
  return receipt;
}

async function main() {
  const [url, tokenWif, kvWif, userWif, recipient, tokenWasm, tokenAbi, kvWasm, kvAbi] = process.argv.slice(2);
  const provider = new Provider([url]);
  provider.onError = () => true; // fail on the first error instead of retrying forever
  const user = Signer.fromWif(userWif);
  user.provider = provider;
  const me = user.getAddress();

  // The token: deployed by its own key, which is also its minting authority.
  const token = await deploy(provider, tokenWif, tokenWasm, tokenAbi);
  const tokenId = token.contract.getId();
  const mintReceipt = await sent(token.contract.functions.mint({ to: me, value: "1000" }));
  // The user's own calls: a Contract with the user as signer.
  const asUser = new Contract({ id: tokenId, abi: token.abi, provider, signer: user });
  const transferReceipt = await sent(asUser.functions.transfer({ from: me, to: recipient, value: "300" }));
  const transferEvents = [];
  for (const ev of transferReceipt.events || []) {
    const decoded = await asUser.decodeEvent(ev);
    transferEvents.push({ name: decoded.name, source: decoded.source, args: decoded.args });
  }
  const balanceMe = (await asUser.functions.balance_of({ owner: me })).result;
  const balanceRecipient = (await asUser.functions.balance_of({ owner: recipient })).result;
  const supply = (await asUser.functions.total_supply()).result;
  const symbol = (await asUser.functions.symbol()).result;

  // A transfer the user has no balance for: koilib shows Ember's error.
  let overdraftError = "";
  try {
    await asUser.functions.transfer({ from: me, to: recipient, value: "100000" });
  } catch (e) {
    overdraftError = e.message;
  }
  // Someone else's tokens: the user did not sign for the recipient.
  let theftError = "";
  try {
    await asUser.functions.transfer({ from: recipient, to: me, value: "1" });
  } catch (e) {
    theftError = e.message;
  }

  // The ABI as the node serves it, with nothing else: enough to call.
  const remote = new Contract({ id: tokenId, provider });
  await remote.fetchAbi();
  const viaServedAbi = (await remote.functions.balance_of({ owner: recipient })).result;

  // The key-value store: protobuf arguments, events, reads.
  const kv = await deploy(provider, kvWif, kvWasm, kvAbi);
  const kvAsUser = new Contract({ id: kv.contract.getId(), abi: kv.abi, provider, signer: user });
  const putReceipt = await sent(kvAsUser.functions.put({ key: "greeting", value: Buffer.from("hello ember").toString("base64url") }));
  const putEvents = [];
  for (const ev of putReceipt.events || []) {
    putEvents.push((await kvAsUser.decodeEvent(ev)).name);
  }
  const got = (await kvAsUser.functions.get({ key: "greeting" })).result;
  const missing = (await kvAsUser.functions.get({ key: "nothing" })).result;

  console.log(JSON.stringify({
    tokenId, deployReverted: token.receipt.reverted || false, deployRcUsed: token.receipt.rc_used,
    mintReverted: mintReceipt.reverted || false, transferReverted: transferReceipt.reverted || false,
    transferEvents, balanceMe, balanceRecipient, supply, symbol, overdraftError, theftError, viaServedAbi,
    kvId: kv.contract.getId(), putEvents, got, missing,
  }));
}

main().catch((e) => {
  console.error("koilib:", e && e.stack ? e.stack : e);
  process.exit(1);
});

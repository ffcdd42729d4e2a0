// A wallet session with koilib against an Ember node: what a Koinos wallet
// does, unmodified. Usage: node wallet.js RPC_URL WIF TOKEN_ID RECIPIENT
// Prints one JSON line with what it saw; node/koilib_test.go checks it.
//
// protobufjs is pinned to 7.4.0 (package.json overrides): with 7.5 and later,
// koilib 9.1.1 cannot even build a Contract from its own utils.tokenAbi
// ("unresolvable extensions: 'extend google.protobuf.FieldOptions'").
const { Signer, Provider, Contract, utils } = require("koilib");

async function main() {
  const [url, wif, tokenId, to] = process.argv.slice(2);
  const provider = new Provider([url]);
  provider.onError = () => true; // fail on the first error instead of retrying forever
  const signer = Signer.fromWif(wif);
  signer.provider = provider;
  const me = signer.getAddress();

  const head = await provider.getHeadInfo();
  const chainId = await provider.getChainId();
  const nonce = await provider.getNonce(me);
  const rc = await provider.getAccountRc(me);

  const token = new Contract({ id: tokenId, abi: utils.tokenAbi, provider, signer });
  const toBefore = (await token.functions.balanceOf({ owner: to })).result.value;
  const fromBefore = (await token.functions.balanceOf({ owner: me })).result.value;

  // koilib fills chain id, nonce (getNextNonce) and rc_limit (all mana).
  const { transaction, receipt } = await token.functions.transfer({ from: me, to, value: "12345" });
  const { blockNumber, blockId } = await transaction.wait("byTransactionId", 30000);
  const block = await provider.getBlock(blockNumber);

  const toAfter = (await token.functions.balanceOf({ owner: to })).result.value;
  const fromAfter = (await token.functions.balanceOf({ owner: me })).result.value;
  const info = (await token.functions.getInfo()).result;
  const nonceAfter = await provider.getNonce(me);

  // The ABI as the node serves it (contract_meta_store.get_contract_meta).
  const remote = new Contract({ id: tokenId, provider });
  await remote.fetchAbi();
  const viaServedAbi = (await remote.functions.balanceOf({ owner: to })).result.value;
  // A method without arguments: its argument type is koinos.chain.nop_arguments.
  const symbolViaServedAbi = (await remote.functions.symbol()).result.value;

  // A bad transaction must come back as an error koilib can show.
  let badError = "";
  try {
    await token.functions.transfer({ from: me, to, value: "1" }, { nonce: utils.encodeBase64url(new Uint8Array([0x28, 0x01])), sendTransaction: true });
  } catch (e) {
    badError = e.message;
  }

  console.log(JSON.stringify({
    head: head.head_topology.height, chainId, nonce, rc,
    txId: transaction.id, receiptRcUsed: receipt.rc_used, receiptReverted: receipt.reverted || false,
    blockNumber, blockId, blockHasTx: block.block.transactions.some((t) => t.id === transaction.id),
    toBefore, toAfter, fromBefore, fromAfter, info, nonceAfter, viaServedAbi, symbolViaServedAbi, badError,
  }));
}

main().catch((e) => {
  console.error("koilib:", e && e.stack ? e.stack : e);
  process.exit(1);
});

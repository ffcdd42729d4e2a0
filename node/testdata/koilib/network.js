// koilib across a network: a transfer signed and sent to one Ember node is
// waited for, and read back, on another. Usage:
// node network.js SEND_URL WAIT_URL WIF TOKEN_ID RECIPIENT
// Prints one JSON line; node/network_koilib_test.go checks it.
const { Signer, Provider, Contract, utils } = require("koilib");

async function main() {
  const [sendUrl, waitUrl, wif, tokenId, to] = process.argv.slice(2);
  const sender = new Provider([sendUrl]);
  const watcher = new Provider([waitUrl]);
  sender.onError = () => true;
  watcher.onError = () => true;
  const signer = Signer.fromWif(wif);
  signer.provider = sender;
  const me = signer.getAddress();

  const onSender = new Contract({ id: tokenId, abi: utils.tokenAbi, provider: sender, signer });
  const onWatcher = new Contract({ id: tokenId, abi: utils.tokenAbi, provider: watcher });
  const toBefore = (await onWatcher.functions.balanceOf({ owner: to })).result.value;

  const { transaction } = await onSender.functions.transfer({ from: me, to, value: "777" });
  // Waited for on the other node: koilib polls its transaction and block
  // stores until a block holds the transaction.
  const { blockNumber, blockId } = await watcher.wait(transaction.id, "byTransactionId", 30000);
  const block = await watcher.getBlock(blockNumber);
  const toAfter = (await onWatcher.functions.balanceOf({ owner: to })).result.value;
  const nonceOnWatcher = await watcher.getNonce(me);

  console.log(JSON.stringify({
    txId: transaction.id, blockNumber, blockId,
    blockHasTx: block.block.transactions.some((t) => t.id === transaction.id),
    toBefore: toBefore || "0", toAfter, nonceOnWatcher,
  }));
}

main().catch((e) => {
  console.error("koilib:", e && e.stack ? e.stack : e);
  process.exit(1);
});

// Passes a call on to another contract: the arguments are the callee's
// 25-byte id, then its arguments; the entry point is the callee's. It
// answers what the callee answered, or fails with the callee's code and
// message. engine/chain's tests use it to call the native token from a
// contract, as a malicious contract would try to move its callers' tokens.
import { System, StringBytes } from "@koinos/sdk-as";

export function main(): i32 {
  const a = System.getArguments();
  if (a.args.length < 25) System.revert("forwarder: arguments start with the callee's 25-byte id");
  const callee = a.args.slice(0, 25);
  const r = System.call(callee, a.entry_point, a.args.slice(25));
  if (r.code != 0) {
    const msg = r.res.error ? r.res.error!.message : "callee failed";
    System.exit(r.code, StringBytes.stringToBytes(msg));
  }
  System.exit(0, r.res.object);
  return 0;
}

main();

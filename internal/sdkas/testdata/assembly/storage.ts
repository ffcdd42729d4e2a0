// A storage and event contract written as a Koinos developer writes one,
// with @koinos/sdk-as. internal/sdkas compiles it with asc as the SDK's
// own build does; engine/vm/sdk_test.go runs it on Ember's VM.
import { System, Crypto, chain, authority, StringBytes } from "@koinos/sdk-as";

const STORE: u32 = 1;

export function main(): i32 {
  const space = new chain.object_space(false, System.getContractId(), STORE);
  const args = System.getArguments();
  let ret = new Uint8Array(0);
  switch (args.entry_point) {
    // put: keeps the arguments under "key" and says so in an event.
    case 0x01: {
      System.putBytes(space, "key", args.args);
      System.event("storage.stored", args.args, []);
      break;
    }
    // get: what put kept, empty when nothing is.
    case 0x02: {
      const v = System.getBytes(space, "key");
      if (v) ret = v;
      break;
    }
    // remove: forgets it.
    case 0x03: {
      System.removeObject(space, "key");
      break;
    }
    // guarded: only when the account in the arguments authorized the call.
    case 0x04: {
      System.requireAuthority(authority.authorization_type.contract_call, args.args);
      ret = StringBytes.stringToBytes("authorized");
      break;
    }
    // digest: the SHA-256 multihash of the arguments.
    case 0x05: {
      ret = System.hash(Crypto.multicodec.sha2_256, args.args)!;
      break;
    }
    // chain: a log line, and the chain id.
    case 0x06: {
      System.log("chain id asked");
      ret = System.getChainId();
      break;
    }
    default:
      System.revert("unknown entry point");
  }
  System.exit(0, ret);
  return 0;
}

main();

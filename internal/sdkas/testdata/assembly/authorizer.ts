// A contract account that overrides its authority, as Koinos's smart
// wallets do: uploaded with authorizes_call_contract (and upload), the
// chain asks its authorize entry point instead of checking the account's
// signature. It agrees while "allow" is set; anyone may set or clear it
// (a test contract: a real wallet would check who asks).
// engine/chain's TestAuthorizeOverride uses it.
import { System, authority, chain, Protobuf } from "@koinos/sdk-as";

const SPACE_ID: u32 = 0;

export function main(): i32 {
  const contractArgs = System.getArguments();
  const space = new chain.object_space(false, System.getContractId(), SPACE_ID);
  let retbuf = new Uint8Array(0);
  switch (contractArgs.entry_point) {
    // authorize: Koinos's entry point for authority overrides.
    case 0x4a2dbd90: {
      Protobuf.decode<authority.authorize_arguments>(contractArgs.args, authority.authorize_arguments.decode);
      const allowed = System.getBytes(space, "allow") != null;
      retbuf = Protobuf.encode(new authority.authorize_result(allowed), authority.authorize_result.encode);
      break;
    }
    // allow: agree from now on.
    case 0x01: {
      System.putBytes(space, "allow", new Uint8Array(1));
      break;
    }
    // deny: refuse from now on.
    case 0x02: {
      System.removeObject(space, "allow");
      break;
    }
    default:
      System.revert("unknown entry point");
  }
  System.exit(0, retbuf);
  return 0;
}
main();

// A key-value store with events, written as a Koinos developer writes a
// contract with @koinos/sdk-as and an ABI: protobuf arguments and results
// (proto/kvstore.ts), the SDK's entry point ids (the first four bytes of
// the SHA-256 of each method's name), an event per write. Anyone may
// write: the token contract is the one that checks authority.
// internal/sdkas builds it; abi/kvstore.abi describes it to koilib and
// koinos-cli. (storage.ts is the raw-bytes contract of the VM's tests and
// benchmarks, kept as it is so their figures stay comparable.)
import { Protobuf, System, chain } from "@koinos/sdk-as";
import { kvstore } from "./proto/kvstore";

const VALUES_SPACE_ID: u32 = 0;

export function main(): i32 {
  const contractArgs = System.getArguments();
  const space = new chain.object_space(false, System.getContractId(), VALUES_SPACE_ID);
  let retbuf = new Uint8Array(0);

  switch (contractArgs.entry_point) {
    // put: keeps value under key.
    case 0x373cb2c6: {
      const args = Protobuf.decode<kvstore.put_arguments>(contractArgs.args, kvstore.put_arguments.decode);
      System.putBytes(space, args.key, args.value);
      System.event(
        "kvstore.put_event",
        Protobuf.encode(new kvstore.put_event(args.key, args.value), kvstore.put_event.encode),
        []
      );
      retbuf = Protobuf.encode(new kvstore.empty_message(), kvstore.empty_message.encode);
      break;
    }
    // get: the value under key, and whether there is one.
    case 0x2998b323: {
      const args = Protobuf.decode<kvstore.get_arguments>(contractArgs.args, kvstore.get_arguments.decode);
      const value = System.getBytes(space, args.key);
      const res = value ? new kvstore.get_result(value, true) : new kvstore.get_result();
      retbuf = Protobuf.encode(res, kvstore.get_result.encode);
      break;
    }
    // remove: forgets key; an event only when there was a value.
    case 0x7e5608ab: {
      const args = Protobuf.decode<kvstore.remove_arguments>(contractArgs.args, kvstore.remove_arguments.decode);
      if (System.getBytes(space, args.key)) {
        System.removeObject(space, args.key);
        System.event(
          "kvstore.remove_event",
          Protobuf.encode(new kvstore.remove_event(args.key), kvstore.remove_event.encode),
          []
        );
      }
      retbuf = Protobuf.encode(new kvstore.empty_message(), kvstore.empty_message.encode);
      break;
    }
    default:
      System.revert("unknown entry point");
  }

  System.exit(0, retbuf);
  return 0;
}

main();

// A fungible token written as a Koinos developer writes one with
// @koinos/sdk-as: the KCS-1 entry points of Koinos's koin contract and the
// SDK's token example (each id is the first four bytes of the SHA-256 of
// the method's name, as the SDK's ABI generator derives them),
// koinos-proto's koinos.contracts.token messages for arguments, results
// and events, and the event names koin emits. internal/sdkas builds it;
// abi/token.abi describes it to koilib and koinos-cli.
import { Arrays, Protobuf, SafeMath, Storage, System, authority, error, token } from "@koinos/sdk-as";

const SUPPLY_SPACE_ID: u32 = 0;
const BALANCES_SPACE_ID: u32 = 1;

class Token {
  _name: string = "Ember Test Token";
  _symbol: string = "ETT";
  _decimals: u32 = 8;

  contractId: Uint8Array;
  supply: Storage.Obj<token.balance_object>;
  balances: Storage.Map<Uint8Array, token.balance_object>;

  constructor() {
    const contractId = System.getContractId();
    this.contractId = contractId;
    this.supply = new Storage.Obj(
      contractId,
      SUPPLY_SPACE_ID,
      token.balance_object.decode,
      token.balance_object.encode,
      () => new token.balance_object()
    );
    this.balances = new Storage.Map(
      contractId,
      BALANCES_SPACE_ID,
      token.balance_object.decode,
      token.balance_object.encode,
      () => new token.balance_object()
    );
  }

  name(): token.name_result {
    return new token.name_result(this._name);
  }

  symbol(): token.symbol_result {
    return new token.symbol_result(this._symbol);
  }

  decimals(): token.decimals_result {
    return new token.decimals_result(this._decimals);
  }

  total_supply(): token.total_supply_result {
    return new token.total_supply_result(this.supply.get()!.value);
  }

  balance_of(args: token.balance_of_arguments): token.balance_of_result {
    return new token.balance_of_result(this.balances.get(args.owner)!.value);
  }

  transfer(args: token.transfer_arguments): token.transfer_result {
    System.require(args.from.length > 0, "account 'from' cannot be empty");
    System.require(args.to.length > 0, "account 'to' cannot be empty");
    System.require(!Arrays.equal(args.from, args.to), "cannot transfer to yourself");
    System.requireAuthority(authority.authorization_type.contract_call, args.from);

    const fromBalance = this.balances.get(args.from)!;
    System.require(fromBalance.value >= args.value, "account 'from' has insufficient balance", error.error_code.failure);
    const toBalance = this.balances.get(args.to)!;

    // Balances add up to the supply, a u64: the credit cannot overflow.
    fromBalance.value -= args.value;
    toBalance.value += args.value;
    this.balances.put(args.from, fromBalance);
    this.balances.put(args.to, toBalance);

    System.event(
      "token.transfer_event",
      Protobuf.encode(new token.transfer_event(args.from, args.to, args.value), token.transfer_event.encode),
      [args.to, args.from]
    );
    return new token.transfer_result();
  }

  mint(args: token.mint_arguments): token.mint_result {
    System.require(args.to.length > 0, "account 'to' cannot be empty");
    // Only the contract's own account mints: the key that uploaded it
    // signs, or its authorize entry point agrees.
    System.requireAuthority(authority.authorization_type.contract_call, this.contractId);

    const supply = this.supply.get()!;
    const newSupply = SafeMath.tryAdd(supply.value, args.value);
    System.require(!newSupply.error, "mint would overflow supply", error.error_code.failure);
    const toBalance = this.balances.get(args.to)!;

    supply.value = newSupply.value;
    toBalance.value += args.value;
    this.supply.put(supply);
    this.balances.put(args.to, toBalance);

    System.event(
      "token.mint_event",
      Protobuf.encode(new token.mint_event(args.to, args.value), token.mint_event.encode),
      [args.to]
    );
    return new token.mint_result();
  }

  burn(args: token.burn_arguments): token.burn_result {
    System.require(args.from.length > 0, "account 'from' cannot be empty");
    System.requireAuthority(authority.authorization_type.contract_call, args.from);

    const fromBalance = this.balances.get(args.from)!;
    System.require(fromBalance.value >= args.value, "account 'from' has insufficient balance", error.error_code.failure);
    const supply = this.supply.get()!;

    // A balance is part of the supply: the supply cannot underflow.
    supply.value -= args.value;
    fromBalance.value -= args.value;
    this.supply.put(supply);
    this.balances.put(args.from, fromBalance);

    System.event(
      "token.burn_event",
      Protobuf.encode(new token.burn_event(args.from, args.value), token.burn_event.encode),
      [args.from]
    );
    return new token.burn_result();
  }
}

export function main(): i32 {
  const contractArgs = System.getArguments();
  let retbuf = new Uint8Array(0);
  const c = new Token();

  switch (contractArgs.entry_point) {
    // name
    case 0x82a3537f: {
      retbuf = Protobuf.encode(c.name(), token.name_result.encode);
      break;
    }
    // symbol
    case 0xb76a7ca1: {
      retbuf = Protobuf.encode(c.symbol(), token.symbol_result.encode);
      break;
    }
    // decimals
    case 0xee80fd2f: {
      retbuf = Protobuf.encode(c.decimals(), token.decimals_result.encode);
      break;
    }
    // total_supply
    case 0xb0da3934: {
      retbuf = Protobuf.encode(c.total_supply(), token.total_supply_result.encode);
      break;
    }
    // balance_of
    case 0x5c721497: {
      const args = Protobuf.decode<token.balance_of_arguments>(contractArgs.args, token.balance_of_arguments.decode);
      retbuf = Protobuf.encode(c.balance_of(args), token.balance_of_result.encode);
      break;
    }
    // transfer
    case 0x27f576ca: {
      const args = Protobuf.decode<token.transfer_arguments>(contractArgs.args, token.transfer_arguments.decode);
      retbuf = Protobuf.encode(c.transfer(args), token.transfer_result.encode);
      break;
    }
    // mint
    case 0xdc6f17bb: {
      const args = Protobuf.decode<token.mint_arguments>(contractArgs.args, token.mint_arguments.decode);
      retbuf = Protobuf.encode(c.mint(args), token.mint_result.encode);
      break;
    }
    // burn
    case 0x859facc5: {
      const args = Protobuf.decode<token.burn_arguments>(contractArgs.args, token.burn_arguments.decode);
      retbuf = Protobuf.encode(c.burn(args), token.burn_result.encode);
      break;
    }
    default:
      System.revert("unknown entry point");
  }

  System.exit(0, retbuf);
  return 0;
}

main();

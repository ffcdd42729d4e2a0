// The kvstore contract's messages, in the form @koinos/as-proto-gen
// generates from this .proto (kvstoreFile in internal/sdkas/abi.go builds
// the same descriptor for the ABI; TestSDKKVStore in engine/vm checks the
// two agree on the wire):
//
//   syntax = "proto3";
//   package kvstore;
//   message put_arguments { string key = 1; bytes value = 2; }
//   message get_arguments { string key = 1; }
//   message get_result { bytes value = 1; bool found = 2; }
//   message remove_arguments { string key = 1; }
//   message empty_message {}
//   message put_event { string key = 1; bytes value = 2; }
//   message remove_event { string key = 1; }
import { Writer, Reader } from "as-proto";

export namespace kvstore {
  export class put_arguments {
    static encode(message: put_arguments, writer: Writer): void {
      if (message.key.length != 0) {
        writer.uint32(10);
        writer.string(message.key);
      }

      if (message.value.length != 0) {
        writer.uint32(18);
        writer.bytes(message.value);
      }
    }

    static decode(reader: Reader, length: i32): put_arguments {
      const end: usize = length < 0 ? reader.end : reader.ptr + length;
      const message = new put_arguments();

      while (reader.ptr < end) {
        const tag = reader.uint32();
        switch (tag >>> 3) {
          case 1:
            message.key = reader.string();
            break;

          case 2:
            message.value = reader.bytes();
            break;

          default:
            reader.skipType(tag & 7);
            break;
        }
      }

      return message;
    }

    key: string;
    value: Uint8Array;

    constructor(key: string = "", value: Uint8Array = new Uint8Array(0)) {
      this.key = key;
      this.value = value;
    }
  }

  export class get_arguments {
    static encode(message: get_arguments, writer: Writer): void {
      if (message.key.length != 0) {
        writer.uint32(10);
        writer.string(message.key);
      }
    }

    static decode(reader: Reader, length: i32): get_arguments {
      const end: usize = length < 0 ? reader.end : reader.ptr + length;
      const message = new get_arguments();

      while (reader.ptr < end) {
        const tag = reader.uint32();
        switch (tag >>> 3) {
          case 1:
            message.key = reader.string();
            break;

          default:
            reader.skipType(tag & 7);
            break;
        }
      }

      return message;
    }

    key: string;

    constructor(key: string = "") {
      this.key = key;
    }
  }

  export class get_result {
    static encode(message: get_result, writer: Writer): void {
      if (message.value.length != 0) {
        writer.uint32(10);
        writer.bytes(message.value);
      }

      if (message.found != false) {
        writer.uint32(16);
        writer.bool(message.found);
      }
    }

    static decode(reader: Reader, length: i32): get_result {
      const end: usize = length < 0 ? reader.end : reader.ptr + length;
      const message = new get_result();

      while (reader.ptr < end) {
        const tag = reader.uint32();
        switch (tag >>> 3) {
          case 1:
            message.value = reader.bytes();
            break;

          case 2:
            message.found = reader.bool();
            break;

          default:
            reader.skipType(tag & 7);
            break;
        }
      }

      return message;
    }

    value: Uint8Array;
    found: bool;

    constructor(value: Uint8Array = new Uint8Array(0), found: bool = false) {
      this.value = value;
      this.found = found;
    }
  }

  export class remove_arguments {
    static encode(message: remove_arguments, writer: Writer): void {
      if (message.key.length != 0) {
        writer.uint32(10);
        writer.string(message.key);
      }
    }

    static decode(reader: Reader, length: i32): remove_arguments {
      const end: usize = length < 0 ? reader.end : reader.ptr + length;
      const message = new remove_arguments();

      while (reader.ptr < end) {
        const tag = reader.uint32();
        switch (tag >>> 3) {
          case 1:
            message.key = reader.string();
            break;

          default:
            reader.skipType(tag & 7);
            break;
        }
      }

      return message;
    }

    key: string;

    constructor(key: string = "") {
      this.key = key;
    }
  }

  @unmanaged
  export class empty_message {
    static encode(message: empty_message, writer: Writer): void {}

    static decode(reader: Reader, length: i32): empty_message {
      const end: usize = length < 0 ? reader.end : reader.ptr + length;
      const message = new empty_message();

      while (reader.ptr < end) {
        const tag = reader.uint32();
        switch (tag >>> 3) {
          default:
            reader.skipType(tag & 7);
            break;
        }
      }

      return message;
    }

    constructor() {}
  }

  export class put_event {
    static encode(message: put_event, writer: Writer): void {
      if (message.key.length != 0) {
        writer.uint32(10);
        writer.string(message.key);
      }

      if (message.value.length != 0) {
        writer.uint32(18);
        writer.bytes(message.value);
      }
    }

    static decode(reader: Reader, length: i32): put_event {
      const end: usize = length < 0 ? reader.end : reader.ptr + length;
      const message = new put_event();

      while (reader.ptr < end) {
        const tag = reader.uint32();
        switch (tag >>> 3) {
          case 1:
            message.key = reader.string();
            break;

          case 2:
            message.value = reader.bytes();
            break;

          default:
            reader.skipType(tag & 7);
            break;
        }
      }

      return message;
    }

    key: string;
    value: Uint8Array;

    constructor(key: string = "", value: Uint8Array = new Uint8Array(0)) {
      this.key = key;
      this.value = value;
    }
  }

  export class remove_event {
    static encode(message: remove_event, writer: Writer): void {
      if (message.key.length != 0) {
        writer.uint32(10);
        writer.string(message.key);
      }
    }

    static decode(reader: Reader, length: i32): remove_event {
      const end: usize = length < 0 ? reader.end : reader.ptr + length;
      const message = new remove_event();

      while (reader.ptr < end) {
        const tag = reader.uint32();
        switch (tag >>> 3) {
          case 1:
            message.key = reader.string();
            break;

          default:
            reader.skipType(tag & 7);
            break;
        }
      }

      return message;
    }

    key: string;

    constructor(key: string = "") {
      this.key = key;
    }
  }
}

// A restricted reader of Python pickles (protocols 0-5), for the metadata of PyTorch checkpoints.
//
// A pickle is a program: unpickling it with Python can run any code it names. This reader runs no code:
// it interprets the opcodes that build plain data (numbers, strings, bytes, lists, tuples, dicts, sets),
// and a pickle that names a callable (GLOBAL / STACK_GLOBAL with REDUCE, NEWOBJ, BUILD) gets only what
// the caller's `globals` table makes of that name; any other name is refused, saying which one.
// Opcode semantics follow CPython's Lib/pickle.py (`_Unpickler`) and Lib/pickletools.py.

/** A Python object as this reader builds it. Tuples and lists are both arrays; dicts keep their order. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyValue, PyValue>
  | Set<PyValue>
  | PyGlobal
  | object;

/** A reference to `module.name` that has not been called (a class or function used as a value). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

export interface UnpickleOptions {
  /** What calling `module.name` (REDUCE, NEWOBJ) gives, by qualified name. Names not here are refused. */
  calls?: Readonly<Record<string, (args: PyValue[]) => PyValue>>;
  /** Names that may appear as plain values (e.g. storage classes); each becomes a PyGlobal. */
  values?: ReadonlySet<string>;
  /** BUILD (`__setstate__`) on an object; the default accepts only dicts and ignores their state. */
  build?: (obj: PyValue, state: PyValue) => void;
  /** PERSID / BINPERSID: the object a persistent id stands for. Without it such pickles are refused. */
  persistentLoad?: (id: PyValue) => PyValue;
  /** Named in error messages. */
  source?: string;
}

/** How protocols 0-3 pickle plain data that has no opcode of its own there: bytes, sets. Safe to build. */
const PLAIN_DATA: Readonly<Record<string, (args: PyValue[]) => PyValue>> = {
  "_codecs.encode": ([text, encoding]) =>
    Uint8Array.from(
      Buffer.from(String(text), encoding === "latin1" || encoding === "latin-1" ? "latin1" : "utf8"),
    ),
  "builtins.bytes": ([v]) =>
    v instanceof Uint8Array ? v : Array.isArray(v) ? Uint8Array.from(v as number[]) : new Uint8Array(),
  "builtins.bytearray": ([v]) =>
    v instanceof Uint8Array ? v : Array.isArray(v) ? Uint8Array.from(v as number[]) : new Uint8Array(),
  "builtins.set": ([items]) => new Set(Array.isArray(items) ? items : []),
  "builtins.frozenset": ([items]) => new Set(Array.isArray(items) ? items : []),
};

export class UnpicklingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnpicklingError";
  }
}

/** Interprets a whole pickle and returns the object it builds. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const where = opts.source ?? "pickle";
  const calls = { ...PLAIN_DATA, ...opts.calls };
  const fail = (pos: number, why: string): never => {
    throw new UnpicklingError(`${where}: ${why} (at byte ${pos})`);
  };
  // Like CPython's unpickler: MARK pushes the current stack onto `marks` and starts an empty one.
  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;

  const need = (n: number) => {
    if (pos + n > buf.length) fail(pos, `truncated: needs ${n} more bytes`);
  };
  const u8 = () => (need(1), buf[pos++]!);
  const u16 = () => (need(2), (pos += 2), buf.readUInt16LE(pos - 2));
  const u32 = () => (need(4), (pos += 4), buf.readUInt32LE(pos - 4));
  const i32 = () => (need(4), (pos += 4), buf.readInt32LE(pos - 4));
  const u64 = () => {
    need(8);
    const v = buf.readBigUInt64LE(pos);
    pos += 8;
    if (v > BigInt(buf.length)) fail(pos - 8, `length ${v} exceeds the pickle`);
    return Number(v);
  };
  const bytes = (n: number) => {
    need(n);
    pos += n;
    return buf.subarray(pos - n, pos);
  };
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail(pos, "truncated: a text argument has no end of line");
    const s = buf.toString("latin1", pos, end);
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail(pos, "stack underflow");
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail(pos, "stack underflow");
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    stack = marks.pop() ?? fail(pos, "no MARK on the stack");
    return items;
  };
  const global = (pickled: string, name: string): PyValue => {
    // Protocols 0-2 write Python 2's name for the builtins module (pickle's fix_imports).
    const module = pickled === "__builtin__" ? "builtins" : pickled;
    const q = `${module}.${name}`;
    if (calls[q] || opts.values?.has(q)) return new PyGlobal(module, name);
    return fail(pos, `refers to ${q}, which kikitori does not interpret (no code in a pickle is ever run)`);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail(pos, "calls something that is not a named global");
    const impl = calls[fn.qualifiedName];
    if (!impl) return fail(pos, `calls ${fn.qualifiedName}, which kikitori does not interpret`);
    if (!Array.isArray(args))
      return fail(pos, `calls ${fn.qualifiedName} with arguments that are not a tuple`);
    return impl(args);
  };
  const setItems = (dict: PyValue, items: PyValue[]) => {
    if (!(dict instanceof Map)) fail(pos, "SETITEM(S) on something that is not a dict");
    if (items.length % 2) fail(pos, "SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) (dict as Map<PyValue, PyValue>).set(items[i]!, items[i + 1]!);
  };
  const text = (s: string) => {
    // Protocol 0 string literals are Python reprs: quotes and backslash escapes.
    const m = /^(['"])(.*)\1$/s.exec(s);
    if (!m) return fail(pos, `unreadable string literal ${JSON.stringify(s.slice(0, 40))}`);
    return m[2]!.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) =>
      e[0] === "x" ? String.fromCharCode(parseInt(e.slice(1), 16)) : ({ n: "\n", r: "\r", t: "\t" }[e] ?? e),
    );
  };
  const long = (le: Uint8Array): number | bigint => {
    if (le.length === 0) return 0;
    let v = 0n;
    for (let i = le.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(le[i]!);
    if (le[le.length - 1]! & 0x80) v -= 1n << BigInt(8 * le.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(at, "pickle protocol newer than 5");
        break;
      case 0x95: // FRAME: only a hint for buffered readers
        pos += 8;
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(at, `STOP with ${stack.length} items on the stack`);
        return pop();
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(bytes(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(long(bytes(i32())));
        break;
      case 0x49: {
        // INT (protocol 0; "01"/"00" are True/False)
        const s = line();
        stack.push(s === "01" ? true : s === "00" ? false : Number(s));
        break;
      }
      case 0x4c: {
        // LONG (protocol 0)
        const v = BigInt(line().replace(/L$/, ""));
        stack.push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v,
        );
        break;
      }
      case 0x46: // FLOAT
        stack.push(Number(line()));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(buf.readDoubleBE(pos));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(Buffer.from(bytes(u32())).toString("utf8"));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(Buffer.from(bytes(u8())).toString("utf8"));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(Buffer.from(bytes(u64())).toString("utf8"));
        break;
      case 0x56: // UNICODE (raw-unicode-escape, protocol 0)
        stack.push(
          line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
        );
        break;
      case 0x53: // STRING (Python 2 str, protocol 0)
        stack.push(text(line()));
        break;
      case 0x54: // BINSTRING
        stack.push(Buffer.from(bytes(i32())).toString("latin1"));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(Buffer.from(bytes(u8())).toString("latin1"));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(bytes(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(bytes(u8())));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(Uint8Array.from(bytes(u64())));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x74: // TUPLE
      case 0x6c: {
        // LIST
        const items = popMark(); // (before `stack.push`: popMark replaces `stack`)
        stack.push(items);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) fail(at, "APPEND to something that is not a list");
        (list as PyValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail(at, "APPENDS to something that is not a list");
        (list as PyValue[]).push(...items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const d = new Map<PyValue, PyValue>();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) fail(at, "ADDITEMS to something that is not a set");
        for (const i of items) (set as Set<PyValue>).add(i);
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        stack.push(new Set(items));
        break;
      }
      case 0x67: // GET
        stack.push(memoGet(Number(line())));
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x70: // PUT
        memo.set(Number(line()), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string")
          fail(at, "STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (opts.build) opts.build(obj, state);
        else if (!(obj instanceof Map)) fail(at, "BUILD on an object this reader does not know");
        break;
      }
      case 0x50: // PERSID
      case 0x51: {
        // BINPERSID
        const id = op === 0x50 ? line() : pop();
        if (!opts.persistentLoad) fail(at, "a persistent id, but no persistent objects are expected");
        stack.push(opts.persistentLoad!(id));
        break;
      }
      default:
        fail(
          at,
          `opcode 0x${op.toString(16).padStart(2, "0")} is not supported (it builds objects by running code, or is not a pickle opcode)`,
        );
    }
  }

  function memoGet(i: number): PyValue {
    if (!memo.has(i)) fail(pos, `memo entry ${i} was never stored`);
    return memo.get(i)!;
  }
}

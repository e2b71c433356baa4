// Positioned reads from a file handle, so large model files are never loaded whole.
import { open, type FileHandle } from "node:fs/promises";

export class FileReader {
  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  static async open(file: string): Promise<FileReader> {
    const fh = await open(file, "r");
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new Error(`${file}: not a regular file`);
      return new FileReader(file, fh, st.size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Exactly `length` bytes at `pos`; a short file is reported as truncated, naming what was being read. */
  async read(pos: number, length: number, what: string): Promise<Buffer> {
    if (pos + length > this.size) {
      throw new Error(
        `${this.file}: truncated: ${what} needs bytes ${pos}..${pos + length} but the file has ${this.size} bytes`,
      );
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, pos + done);
      if (bytesRead === 0) throw new Error(`${this.file}: truncated while reading ${what}`);
      done += bytesRead;
    }
    return buf;
  }

  /** Up to `length` bytes at `pos` (fewer at the end of the file). */
  async readUpTo(pos: number, length: number): Promise<Buffer> {
    return this.read(pos, Math.max(0, Math.min(length, this.size - pos)), "data");
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

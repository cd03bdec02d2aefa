// The .wat to .wasm step of src/lib/code-scan.wat, shared by its build script and the test that the
// committed bytes are current.
import initWabt from "wabt";

export async function compileCodeScan(wat: string): Promise<Uint8Array> {
  const wabt = await initWabt();
  const module = wabt.parseWat("code-scan.wat", wat, { simd: true });
  try {
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

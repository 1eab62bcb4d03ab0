import { fileURLToPath } from "node:url";
import ts from "typescript";

/** What the built declaration entries of some packages export, and a checker to read it. */
export interface Declarations<P extends string> {
  checker: ts.TypeChecker;
  /** The exported symbols of each package's `dist/index.d.ts`, types included. */
  exports: Map<P, ts.Symbol[]>;
}

/** Reads the built declaration entry (`packages/<p>/dist/index.d.ts`) of each of `packages`. */
export function readDeclarations<P extends string>(packages: readonly P[]): Declarations<P> {
  const files = packages.map((p) =>
    fileURLToPath(new URL(`../packages/${p}/dist/index.d.ts`, import.meta.url)),
  );
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const exports = new Map(
    packages.map((p, i) => {
      const source = program.getSourceFile(files[i]!);
      const module = source === undefined ? undefined : checker.getSymbolAtLocation(source);
      if (module === undefined) throw new Error(`cannot read ${files[i]}; build first`);
      return [p, checker.getExportsOfModule(module)];
    }),
  );
  return { checker, exports };
}

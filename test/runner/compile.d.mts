/** Types for compile.mjs (plain JavaScript: it runs before any TypeScript can be loaded). */
export declare const TRANSFORM_OPTIONS: Record<string, unknown>;
export declare function compileTree(root: string, dirs: string[], outDir: string): Promise<number>;

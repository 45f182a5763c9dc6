/** Types for compiled-tree.mjs (plain JavaScript: postline.mjs loads it before any TypeScript). */
export declare const SOURCE_DIRS: string[];
export declare const TREE_OPTIONS: Record<string, unknown>;
export declare function listFiles(root: string, dirs: string[]): string[];
export declare function listTypeScript(root: string, dirs: string[]): string[];
export declare function compiledTree(root: string, opts?: { cacheDir?: string }): Promise<string>;

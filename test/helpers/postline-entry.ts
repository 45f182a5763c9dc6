/**
 * Whether a word of a command line is the script a `postline` process runs: services/postline.mjs
 * (tsx over the sources), or the `services/cli.js` of a compiled tree — what `postline start`
 * runs and gives its children (services/compiled-tree.mjs), or dist/ in the image.
 */
export const isPostlineEntry = (word: string): boolean => word.endsWith('postline.mjs') || /[/\\]services[/\\]cli\.js$/.test(word);

/**
 * `postline migrate`: applies pending ClickHouse migrations and the configured retention, then
 * exits — what the one-shot job of docker-compose runs before the stages start. The same as
 * `postline analytics migrate`; a command of its own so deployment tooling need not know
 * which stage owns the schema.
 */
export async function main(argv: string[]): Promise<void> {
  const analytics = await import('./analytics/main.js');
  await analytics.main(['migrate', ...argv]);
}

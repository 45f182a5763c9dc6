import { Type, type Static } from '@sinclair/typebox';

export const Priority = Type.Union([Type.Literal('critical'), Type.Literal('transactional'), Type.Literal('bulk')]);
export type Priority = Static<typeof Priority>;
export const PRIORITIES: Priority[] = ['critical', 'transactional', 'bulk'];

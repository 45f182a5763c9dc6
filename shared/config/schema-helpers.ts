/** Small builders for config sections: every option has a type, a default and a description. */
import { Type, type TProperties } from '@sinclair/typebox';

export const section = <T extends TProperties>(props: T, description: string) => Type.Object(props, { additionalProperties: false, description });
export const int = (def: number, description: string, min = 0) => Type.Integer({ default: def, minimum: min, description });
export const num = (def: number, description: string, min = 0) => Type.Number({ default: def, minimum: min, description });
export const str = (def: string, description: string) => Type.String({ default: def, description });
export const bool = (def: boolean, description: string) => Type.Boolean({ default: def, description });

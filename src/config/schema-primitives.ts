/** Branded scalar codecs shared by the configuration sections: names, ports, whole numbers. */
import * as t from 'io-ts';

/** Client names: ASCII letters, digits and `_`, not starting with a digit. */
export interface ClientNameBrand {
  readonly ClientName: unique symbol;
}
export const ClientName = t.brand(
  t.string,
  (s): s is t.Branded<string, ClientNameBrand> => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) && s.length <= 64,
  'ClientName',
);
export type ClientName = t.TypeOf<typeof ClientName>;

/** `KEY=VALUE` environment entries for stdio upstreams. */
export interface EnvEntryBrand {
  readonly EnvEntry: unique symbol;
}
export const EnvEntry = t.brand(
  t.string,
  (s): s is t.Branded<string, EnvEntryBrand> => /^[A-Za-z_][A-Za-z0-9_]*=/.test(s),
  'EnvEntry',
);

export interface PortBrand {
  readonly Port: unique symbol;
}
export const Port = t.brand(
  t.number,
  (n): n is t.Branded<number, PortBrand> => Number.isInteger(n) && n >= 0 && n <= 65535,
  'Port',
);

export interface PositiveIntBrand {
  readonly PositiveInt: unique symbol;
}
/** A whole number ≥ 1. */
export const PositiveInt = t.brand(
  t.number,
  (n): n is t.Branded<number, PositiveIntBrand> => Number.isInteger(n) && n >= 1,
  'PositiveInt',
);
export type PositiveInt = t.TypeOf<typeof PositiveInt>;

export interface NonNegativeIntBrand {
  readonly NonNegativeInt: unique symbol;
}
/** A whole number ≥ 0. */
export const NonNegativeInt = t.brand(
  t.number,
  (n): n is t.Branded<number, NonNegativeIntBrand> => Number.isInteger(n) && n >= 0,
  'NonNegativeInt',
);

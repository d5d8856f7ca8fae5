/** Built-in in-process upstream servers a config may name in `inprocess_server`. */
export const INPROCESS_SERVERS: readonly string[] = ['demo'];

/** Built-in in-process upstream servers a config may name in `inprocess_server`. */
/**
 * Built-in in-process upstream servers a config may name in `inprocess_server`: `demo` (the lean
 * build, the gateway's fast in-process path) and `demo_sdk` (the same tools served by the SDK's
 * `McpServer` over `InMemoryTransport`).
 */
export const INPROCESS_SERVERS: readonly string[] = ['demo', 'demo_sdk'];

/**
 * Pools that were never closed when Node's event loop runs dry. A pool keeps no timer or idle
 * socket referenced, so a program that forgot to close it (a `ManagedRuntime` never disposed)
 * still reaches `beforeExit`; there the pool says so once and closes, so that its resources are
 * released properly (for PostgreSQL: Terminate sent, no "unexpected EOF" on the server).
 *
 * @internal
 */
const open = new Set<() => void>()
let installed = false

const onBeforeExit = () => {
  const forgotten = [...open]
  open.clear()
  for (const closeForgotten of forgotten) closeForgotten()
}

/** Registers `closeForgotten` until the returned function is called. @internal */
export const register = (closeForgotten: () => void): () => void => {
  if (typeof process === "undefined" || typeof process.on !== "function") return () => undefined
  if (!installed) {
    installed = true
    process.on("beforeExit", onBeforeExit)
  }
  open.add(closeForgotten)
  return () => {
    open.delete(closeForgotten)
  }
}

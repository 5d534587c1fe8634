import type { GlobalArgs, Session } from './session.js';

/** Where the CLI root's middleware puts the Session of this invocation on the parsed arguments. */
export const SESSION = Symbol('meshfed.session');

/** Parsed arguments carrying their Session. */
export type ArgsWithSession<A> = A & { [SESSION]?: Session };

/** Wraps a handler so that it receives the Session built from the global flags. */
export function withSession<A extends GlobalArgs>(handler: (session: Session, args: A) => Promise<void>) {
  return async (args: ArgsWithSession<A>): Promise<void> => {
    const session = args[SESSION];
    // No session: yargs is only computing shell completions.
    if (!session) return;
    await handler(session, args);
  };
}

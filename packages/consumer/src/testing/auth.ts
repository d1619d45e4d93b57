// The capability cases: what a backend declares in `supports` is exercised. `orderedWatchHistory` and `weights`
// gate assertions of the watch and membership cases; `auth` needs the `auth` hook, and with it a session without
// credentials must be refused with a typed, non-retriable error and change nothing.
import { claimValue, describeUnless, ids, memberInfo, type SuiteContext } from './harness';

/** Registers the capability cases (the authentication one skipped, visibly, without `options.auth`). */
export function capabilityCases({ runner: { describe, it, expect }, t, options, caseTimeout }: SuiteContext): void {
  const auth = options.auth;

  describe('capabilities', () => {
    it(
      'a backend that declares `supports.auth` gives the suite an `auth` hook, so that its refusals are tested',
      async () => {
        const b = await t.create();
        const declared = t.supports(b);
        expect(typeof declared.orderedWatchHistory).toBe('boolean');
        expect(typeof declared.weights).toBe('boolean');
        expect(typeof declared.auth).toBe('boolean');
        expect({ auth: declared.auth, hook: auth !== undefined }).toEqual({
          auth: declared.auth,
          hook: declared.auth,
        });
      },
      caseTimeout,
    );
  });

  const missing = auth ? undefined : 'no `auth` hook was given (the backend must then not declare `supports.auth`)';
  describeUnless(describe, missing, 'authentication', () => {
    it(
      'a session without the credentials is refused with ERR_BACKEND_AUTH (not retriable), at connect or at its first call, and changes nothing',
      async () => {
        const group = t.group({ cleanup: false });
        const owner = await t.open(auth!.factory);
        expect(t.supports(owner).auth).toBe(true);
        await owner.join(group, memberInfo('owner'));
        const version = await owner.writeRecord(group, 'allocation', '{"generation":1}', null);
        expect(version).not.toBeNull();
        expect(await owner.claim(group, 't:0', claimValue('owner'))).toBe(true);

        const stranger = await t.create(auth!.unauthenticatedFactory);
        const connected = await stranger.connect().then(
          () => undefined,
          (error: unknown) => error as { code?: unknown; retriable?: unknown },
        );
        const denied = { code: 'ERR_BACKEND_AUTH', retriable: false };
        if (connected !== undefined) {
          // Refused at once (etcd authenticates the client itself): the backend stays unconnected.
          expect({ code: connected.code, retriable: connected.retriable }).toEqual(denied);
          expect(stranger.state).toBe('idle');
        } else {
          // Let in, but refused by every node it touches (ZooKeeper's ACLs).
          const calls: Array<[string, () => Promise<unknown>]> = [
            ['writeRecord over the owner’s version', () => stranger.writeRecord(group, 'allocation', '{}', version)],
            ['writeRecord of a new record', () => stranger.writeRecord(group, 'partitions', '[]', null)],
            ['join', () => stranger.join(group, memberInfo('stranger'))],
            ['claim', () => stranger.claim(group, 't:1', claimValue('stranger'))],
            ['readRecord', () => stranger.readRecord(group, 'allocation')],
          ];
          for (const [what, call] of calls) {
            const error = await t.rejection(call(), `${what} without credentials`);
            expect({ what, code: error.code, retriable: error.retriable }).toEqual({ what, ...denied });
          }
        }
        expect(await owner.readRecord(group, 'allocation')).toMatchObject({ value: '{"generation":1}', version });
        expect(ids(await owner.members(group))).toEqual(['owner']);
        expect([...(await owner.claims(group)).keys()]).toEqual(['t:0']);
      },
      caseTimeout,
    );
  });
}

import { FetchSessionState, type WantedPartition } from '../../src/fetch/session';

const p = (partition: number, fetchOffset: number): WantedPartition => ({
  topic: 't',
  partition,
  fetchOffset,
  maxBytes: 100,
  leaderEpoch: -1,
  lastFetchedEpoch: -1,
});
const sent = (r: ReturnType<FetchSessionState['build']>) =>
  r.topics.flatMap((t) => t.partitions.map((x) => `${x.partition}@${x.fetchOffset}`));

describe('FetchSessionState (KIP-227, client side)', () => {
  it('opens with a full fetch, then sends only new or moved partitions and names the forgotten ones', () => {
    const session = new FetchSessionState(true);
    const first = session.build([p(0, 10), p(1, 20), p(2, 30)]);
    expect(first).toMatchObject({ sessionId: 0, sessionEpoch: 0 });
    expect(sent(first)).toEqual(['0@10', '1@20', '2@30']);
    session.accept(77);

    const second = session.build([p(0, 15), p(1, 20), p(2, 30)]);
    expect(second).toMatchObject({ sessionId: 77, sessionEpoch: 1, forgottenTopicsData: [] });
    expect(sent(second)).toEqual(['0@15']);
    session.accept(77);

    const third = session.build([p(0, 15), p(3, 0)]);
    expect(third).toMatchObject({ sessionId: 77, sessionEpoch: 2 });
    expect(sent(third)).toEqual(['3@0']);
    expect(third.forgottenTopicsData).toEqual([{ topic: 't', partitions: [1, 2] }]);
  });

  it('starts over with a full fetch after reset (a session error or a lost connection)', () => {
    const session = new FetchSessionState(true);
    session.build([p(0, 1)]);
    session.accept(5);
    session.reset();
    const again = session.build([p(0, 2), p(1, 3)]);
    expect(again).toMatchObject({ sessionId: 0, sessionEpoch: 0 });
    expect(sent(again)).toEqual(['0@2', '1@3']);
  });

  it('keeps sending full fetches when the broker declines a session (id 0) or sessions are off', () => {
    const declined = new FetchSessionState(true);
    declined.build([p(0, 1)]);
    declined.accept(0);
    expect(declined.build([p(0, 1)])).toMatchObject({ sessionId: 0, sessionEpoch: 0 });
    const off = new FetchSessionState(false);
    off.build([p(0, 1)]);
    off.accept(9);
    const r = off.build([p(0, 1)]);
    expect(r).toMatchObject({ sessionId: 0, sessionEpoch: -1 });
    expect(sent(r)).toEqual(['0@1']);
  });
});

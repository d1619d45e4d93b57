// emitToEach: each listener on its own, `once` listeners removed as EventEmitter.emit removes them.
import { EventEmitter } from 'node:events';
import { emitToEach } from '../../src';

describe('emitToEach', () => {
  it('calls every listener although one throws, and hands what it threw to onThrow', () => {
    const emitter = new EventEmitter();
    const heard: string[] = [];
    emitter.on('expired', () => {
      throw new Error('first');
    });
    emitter.on('expired', ({ sessionId }: { sessionId: string }) => heard.push(sessionId));
    const thrown: unknown[] = [];
    emitToEach(emitter, 'expired', [{ sessionId: 's1' }], (e) => thrown.push(e));
    expect(heard).toEqual(['s1']);
    expect(thrown.map((e) => (e as Error).message)).toEqual(['first']);
  });

  it('calls a once listener once, as emit does', () => {
    const emitter = new EventEmitter();
    const heard: string[] = [];
    emitter.once('expired', ({ sessionId }: { sessionId: string }) => heard.push(sessionId));
    emitToEach(emitter, 'expired', [{ sessionId: 's1' }], () => undefined);
    emitToEach(emitter, 'expired', [{ sessionId: 's2' }], () => undefined);
    expect(heard).toEqual(['s1']);
    expect(emitter.listenerCount('expired')).toBe(0);
  });
});

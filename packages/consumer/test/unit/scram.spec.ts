import { ScramClient } from '../../src/sasl/scram';

// Test vectors from RFC 5802 section 5 (SHA-1) adapted by RFC 7677 section 3 (SHA-256): user "user", password
// "pencil". They are the independent source for the SCRAM-SHA-256 computation.
describe('ScramClient', () => {
  it('reproduces the RFC 7677 SCRAM-SHA-256 exchange byte for byte', () => {
    const client = new ScramClient({
      mechanism: 'SCRAM-SHA-256',
      username: 'user',
      password: 'pencil',
      nonce: 'rOprNGfwEbeRWgbNEkqO',
    });
    expect(client.firstMessage().toString()).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = client.finalMessage(
      Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'),
    );
    expect(final.toString()).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    expect(() => client.verifyServerFinal(Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))).not.toThrow();
  });

  it('rejects a server signature that does not match', () => {
    const client = new ScramClient({
      mechanism: 'SCRAM-SHA-256',
      username: 'user',
      password: 'pencil',
      nonce: 'rOprNGfwEbeRWgbNEkqO',
    });
    client.firstMessage();
    client.finalMessage(
      Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'),
    );
    expect(() => client.verifyServerFinal(Buffer.from('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))).toThrow(
      expect.objectContaining({ code: 'ERR_SASL' }),
    );
  });

  it('rejects a server nonce that does not extend ours, too few iterations, and server errors', () => {
    const make = () => {
      const c = new ScramClient({ mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p', nonce: 'abc' });
      c.firstMessage();
      return c;
    };
    expect(() => make().finalMessage(Buffer.from('r=xyz123,s=c2FsdA==,i=4096'))).toThrow(/nonce/);
    expect(() => make().finalMessage(Buffer.from('r=abc123,s=c2FsdA==,i=1'))).toThrow(/iterations/);
    expect(() => make().finalMessage(Buffer.from('e=invalid-proof'))).toThrow(/invalid-proof/);
  });

  it('escapes = and , in user names', () => {
    const client = new ScramClient({ mechanism: 'SCRAM-SHA-256', username: 'a=b,c', password: 'p', nonce: 'n' });
    expect(client.firstMessage().toString()).toBe('n,,n=a=3Db=2Cc,r=n');
  });
});

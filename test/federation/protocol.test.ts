import test from 'ava';
import { detectProtocol, FederationInputError, type ProtocolSource, type ServicePort } from '../../src/federation/index.js';

// Istio's protocol selection: appProtocol first, then the port name prefix before "-"; anything unrecognised is
// carried as TCP by a federation gateway.
const table: Array<[ServicePort, 'HTTP' | 'TCP', ProtocolSource]> = [
  [{ port: 9080, name: 'http' }, 'HTTP', 'name'],
  [{ port: 80, name: 'http-web' }, 'HTTP', 'name'],
  [{ port: 80, name: 'HTTP-Web' }, 'HTTP', 'name'],
  [{ port: 80, name: 'http2' }, 'HTTP', 'name'],
  [{ port: 8080, name: 'grpc-api' }, 'HTTP', 'name'],
  [{ port: 8080, name: 'grpc-web' }, 'HTTP', 'name'],
  [{ port: 5432, name: 'tcp-postgres' }, 'TCP', 'name'],
  [{ port: 443, name: 'https' }, 'TCP', 'name'],
  [{ port: 443, name: 'tls-api' }, 'TCP', 'name'],
  [{ port: 27017, name: 'mongo' }, 'TCP', 'name'],
  [{ port: 3306, name: 'mysql' }, 'TCP', 'name'],
  [{ port: 6379, name: 'redis-cache' }, 'TCP', 'name'],
  [{ port: 5432, name: 'postgres' }, 'TCP', 'default'],
  [{ port: 8080, name: 'web' }, 'TCP', 'default'],
  [{ port: 8080, name: 'httpx' }, 'TCP', 'default'],
  [{ port: 8080 }, 'TCP', 'default'],
  [{ port: 8080, name: 'tcp', appProtocol: 'http' }, 'HTTP', 'appProtocol'],
  [{ port: 8080, name: 'http', appProtocol: 'tcp' }, 'TCP', 'appProtocol'],
  [{ port: 8080, name: 'web', appProtocol: 'grpc' }, 'HTTP', 'appProtocol'],
  [{ port: 8080, name: 'web', appProtocol: 'kubernetes.io/h2c' }, 'HTTP', 'appProtocol'],
  [{ port: 8080, name: 'web', appProtocol: 'kubernetes.io/wss' }, 'TCP', 'appProtocol'],
  [{ port: 8080, name: 'http-web', appProtocol: 'unknown-thing' }, 'HTTP', 'name'],
];

for (const [port, protocol, source] of table) {
  test(`protocol of ${JSON.stringify(port)} is ${protocol} (from ${source})`, (t) => {
    const d = detectProtocol(port);
    t.is(d.protocol, protocol);
    t.is(d.source, source);
  });
}

test('UDP and SCTP ports cannot be federated', (t) => {
  t.throws(() => detectProtocol({ port: 53, name: 'dns', protocol: 'UDP' }), { instanceOf: FederationInputError, message: /UDP/ });
  t.throws(() => detectProtocol({ port: 9, name: 'x', protocol: 'SCTP' }), { instanceOf: FederationInputError });
});

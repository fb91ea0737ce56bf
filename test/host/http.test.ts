/**
 * The host runner's HTTP surface, driven over real HTTP: function routes, opt-in function keys, the
 * Event Grid webhook exactly as Core Tools answers it, the admin endpoints and timers.
 */
import { fn, isFunctionsRuntime, registeredFunctions, resolveAppSettingExpression } from '../../shared/registration';
import { startHost, type Host } from '../../host/host';
import { APP_ROOT, captureLogs, FIXTURE_MODULE, waitFor } from './helpers';
import { seen } from './fixtures/functions';

const logs = captureLogs();
let host: Host;

beforeAll(async () => {
  host = await startHost({
    port: 0,
    env: { FIXTURE_TICK: '0 0 0 1 1 *' },
    appRoot: APP_ROOT,
    localSettings: false,
    functionsModule: FIXTURE_MODULE,
    functions: ['hello', 'echo', 'secure', 'boom', 'onEvent', 'tick'],
    disableTimers: true,
    exportEnv: false,
    logSink: logs,
  });
});

afterAll(async () => {
  await host.stop({ drainMs: 2000 });
});

const eg = (fnName: string): string => `${host.url}/runtime/webhooks/eventgrid?functionName=${fnName}`;

describe('HTTP functions', () => {
  it('serves a route with parameters and query, handing the handler real HttpRequest/InvocationContext objects', async () => {
    const res = await fetch(`${host.url}/api/hello/world%20wide?q=42`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ hello: 'world wide', q: '42', realRequest: true, realContext: true, functionName: 'hello' });
    expect(body.invocationId).toMatch(/^[0-9a-f-]{36}$/);
    // The handler's context.info reached the log with the invocation id and function name.
    const line = logs.records.find((r) => r.category === 'function' && r.message === 'Saying hello to world wide');
    expect(line).toMatchObject({ functionName: 'hello', invocationId: body.invocationId, level: 'information' });
  });

  it('passes bodies, headers, status and catch-all parameters through', async () => {
    const res = await fetch(`${host.url}/api/echo/a/b`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test': 'yes' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-echo')).toBe('yes');
    expect(await res.json()).toEqual({ body: { a: 1 }, rest: 'a/b', method: 'POST' });
  });

  it('answers 404 for an unknown route or a method the function does not take', async () => {
    expect((await fetch(`${host.url}/api/nothing-here`)).status).toBe(404);
    expect((await fetch(`${host.url}/api/hello/x`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${host.url}/elsewhere`)).status).toBe(404);
  });

  it('answers 500 when a handler throws, and logs the failure with its invocation id', async () => {
    const res = await fetch(`${host.url}/api/boom`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('');
    const failed = logs.records.find((r) => r.message.startsWith("Executed 'Functions.boom' (Failed"));
    expect(failed?.message).toContain('Handler exploded');
    expect(failed?.invocationId).toBeDefined();
    expect(logs.text()).toMatch(/error \[boom [0-9a-f]{8}\] About to fail/);
  });

  it('does not enforce function keys unless WARDEN_HOST_FUNCTION_KEY is set (like Core Tools)', async () => {
    expect((await fetch(`${host.url}/api/secure`)).status).toBe(200);
  });

  it('enforces function keys (query code or x-functions-key) when WARDEN_HOST_FUNCTION_KEY is set', async () => {
    const keyed = await startHost({
      port: 0,
      env: { WARDEN_HOST_FUNCTION_KEY: 'k-one,k-two' },
      appRoot: APP_ROOT,
      localSettings: false,
      functionsModule: FIXTURE_MODULE,
      functions: ['secure', 'hello'],
      exportEnv: false,
      logSink: () => undefined,
    });
    try {
      expect((await fetch(`${keyed.url}/api/secure`)).status).toBe(401);
      expect((await fetch(`${keyed.url}/api/secure?code=wrong`)).status).toBe(401);
      expect((await fetch(`${keyed.url}/api/secure?code=k-two`)).status).toBe(200);
      const viaHeader = await fetch(`${keyed.url}/api/secure`, { headers: { 'x-functions-key': 'k-one' } });
      expect(viaHeader.status).toBe(200);
      expect(await viaHeader.text()).toBe('secret area');
      // Anonymous routes stay open.
      expect((await fetch(`${keyed.url}/api/hello/x`)).status).toBe(200);
    } finally {
      await keyed.stop({ drainMs: 1000 });
    }
  });
});

describe('Event Grid webhook', () => {
  const egEvent = {
    id: 'eg-1',
    topic: '/subscriptions/s/resourceGroups/rg',
    subject: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws',
    eventType: 'Microsoft.Resources.ResourceWriteSuccess',
    eventTime: '2026-01-01T00:00:00Z',
    data: { operationName: 'Microsoft.MachineLearningServices/workspaces/write' },
    dataVersion: '2',
    metadataVersion: '1',
  };
  const cloudEvent = {
    specversion: '1.0',
    id: 'ce-1',
    source: '/subscriptions/s/resourceGroups/rg',
    type: 'Microsoft.Resources.ResourceWriteSuccess',
    time: '2026-01-01T00:00:00Z',
    subject: '/subscriptions/s/x',
    data: { a: 1 },
  };

  it('delivers each event of an Event Grid schema array to the function and answers 202', async () => {
    const second = { ...egEvent, id: 'eg-2' };
    const res = await fetch(eg('onEvent'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
      body: JSON.stringify([egEvent, second]),
    });
    expect(res.status).toBe(202);
    const got = seen.filter((s) => s.fn === 'onEvent' && ['eg-1', 'eg-2'].includes((s.input as { id: string }).id));
    expect(got.map((s) => s.input)).toEqual([egEvent, second]);
    expect(got.every((s) => s.realContext)).toBe(true);
  });

  it('delivers a single CloudEvent object (cloudevents+json) with its own field names', async () => {
    const res = await fetch(eg('onEvent'), {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json; charset=utf-8', 'aeg-event-type': 'Notification' },
      body: JSON.stringify(cloudEvent),
    });
    expect(res.status).toBe(202);
    expect(seen.find((s) => (s.input as { id?: string }).id === 'ce-1')?.input).toEqual(cloudEvent);
  });

  it('answers a SubscriptionValidation with 200 and its validation code, without invoking the function', async () => {
    const before = seen.length;
    const res = await fetch(eg('onEvent'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'aeg-event-type': 'SubscriptionValidation' },
      body: JSON.stringify([
        {
          id: 'v1',
          topic: '/subscriptions/x',
          subject: '',
          data: { validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6', validationUrl: 'https://example.invalid/validate' },
          eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
          eventTime: '2018-01-25T22:12:19.4556811Z',
          metadataVersion: '1',
          dataVersion: '1',
        },
      ]),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
    expect(seen.length).toBe(before);
  });

  it('answers the CloudEvents OPTIONS handshake with WebHook-Allowed-Origin', async () => {
    const res = await fetch(eg('onEvent'), { method: 'OPTIONS', headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
  });

  it('answers 400 without or with an unknown aeg-event-type, 404 for an unknown function, 500 when the invocation fails', async () => {
    const post = (name: string, headers: Record<string, string>, body: unknown): Promise<Response> =>
      fetch(eg(name), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    expect((await post('onEvent', {}, [egEvent])).status).toBe(400);
    expect((await post('onEvent', { 'aeg-event-type': 'Bogus' }, [egEvent])).status).toBe(400);
    expect((await post('noSuchFunction', { 'aeg-event-type': 'Notification' }, [egEvent])).status).toBe(404);
    expect((await post('hello', { 'aeg-event-type': 'Notification' }, [egEvent])).status).toBe(404);
    expect((await post('onEvent', { 'aeg-event-type': 'Notification' }, [{ ...egEvent, id: 'eg-f', subject: 'fail' }])).status).toBe(500);
  });
});

describe('admin endpoints and timers', () => {
  it('runs a timer function in the background on POST /admin/functions/NAME (202) and answers 404 for unknown names', async () => {
    const before = seen.filter((s) => s.fn === 'tick').length;
    const res = await fetch(`${host.url}/admin/functions/tick`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":""}' });
    expect(res.status).toBe(202);
    const tick = await waitFor('the timer to run', () => seen.filter((s) => s.fn === 'tick')[before]);
    expect(tick.input).toMatchObject({ isPastDue: false, schedule: { adjustForDST: true } });
    expect((await fetch(`${host.url}/admin/functions/nope`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(`${host.url}/admin/functions/hello`, { method: 'POST', body: '{}' })).status).toBe(400);
  });

  it('reports readiness and the function list', async () => {
    const status = await fetch(`${host.url}/admin/host/status`);
    expect(await status.json()).toMatchObject({ state: 'Running' });
    const list = (await (await fetch(`${host.url}/admin/functions`)).json()) as Array<{ name: string; kind: string }>;
    expect(list).toEqual(expect.arrayContaining([{ name: 'tick', kind: 'timer' }, { name: 'onEvent', kind: 'eventGrid' }]));
  });

  it('runs timers on their NCRONTAB schedule resolved from a %SETTING%', async () => {
    const timed = await startHost({
      port: 0,
      env: { FIXTURE_TICK: '* * * * * *' },
      appRoot: APP_ROOT,
      localSettings: false,
      functionsModule: FIXTURE_MODULE,
      functions: ['tick'],
      disableTimers: false,
      exportEnv: false,
      logSink: () => undefined,
    });
    const before = seen.filter((s) => s.fn === 'tick').length;
    try {
      await waitFor('the timer to fire on schedule', () => seen.filter((s) => s.fn === 'tick').length > before, 3000);
    } finally {
      await timed.stop({ drainMs: 1000 });
    }
  });

  it('leaves a function whose %SETTING% does not resolve out, logging it as in error, like the host', async () => {
    const sink = captureLogs();
    const h = await startHost({
      port: 0,
      env: {},
      appRoot: APP_ROOT,
      localSettings: false,
      functionsModule: FIXTURE_MODULE,
      functions: ['tick', 'hello'],
      exportEnv: false,
      logSink: sink,
    });
    await h.stop({ drainMs: 500 });
    expect(h.functions.map((f) => f.name)).toEqual(['hello']);
    expect(sink.text()).toContain("The 'tick' function is in error: '%FIXTURE_TICK%' does not resolve to a value");
  });
});

describe('registration', () => {
  it('records every registration with its kind and the real option objects', () => {
    const kinds = Object.fromEntries(registeredFunctions().map((f) => [f.name, f.kind]));
    expect(kinds).toMatchObject({ hello: 'http', onEvent: 'eventGrid', echoQueue: 'storageQueue', work: 'storageQueue', tick: 'timer' });
    const hello = registeredFunctions().find((f) => f.name === 'hello');
    expect(hello?.kind === 'http' && hello.options.route).toBe('hello/{name}');
  });

  it('does not call app.* outside the Functions worker (it would only print "Skipping call to register")', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      expect(isFunctionsRuntime()).toBe(false);
      fn.http('probeSilent', { route: 'probe', handler: async () => ({ status: 204 }) });
      expect(warn).not.toHaveBeenCalled();
      expect(() => fn.http('probeSilent', { handler: async () => ({}) })).toThrow('registered twice');
    } finally {
      warn.mockRestore();
    }
  });

  it('resolves %SETTING% expressions and names a missing setting', () => {
    expect(resolveAppSettingExpression('%A%-x-%B%', { A: 'one', B: 'two' })).toBe('one-x-two');
    expect(() => resolveAppSettingExpression('%MISSING%', {})).toThrow('app setting MISSING is not set');
  });
});

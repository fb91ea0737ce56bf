import { startApp, type App } from '../helpers/app';

describe('the whole app on the emulator, Azurite and the host runner', () => {
  let app: App;
  beforeAll(async () => {
    app = await startApp({ policy: (emu) => ({ mode: 'enforce', scopes: [`/subscriptions/${emu.subscriptionId}`] }) });
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('answers /api/health with version and mode', async () => {
    const res = await fetch(`${app.url}/api/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; version: string; mode: string };
    expect(body).toMatchObject({ status: 'ok', mode: 'enforce' });
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

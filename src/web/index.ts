export { createApp, type AppDeps } from './app.ts';
export { serve, type Serving } from './serve.ts';

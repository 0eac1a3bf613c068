/** The NATS credentials and TLS files of the configuration, as NatsLink takes them. */
import type { NatsSecurity } from '../bus/nats.js';
import type { Config } from '../config/options.js';

export function natsSecurity(config: Config): NatsSecurity {
  const { natsCredsFile, natsNkeySeedFile, natsTokenFile, natsCaFile, natsCertFile, natsKeyFile } = config.bus;
  return {
    ...(natsCredsFile !== undefined ? { credsFile: natsCredsFile } : {}),
    ...(natsNkeySeedFile !== undefined ? { nkeySeedFile: natsNkeySeedFile } : {}),
    ...(natsTokenFile !== undefined ? { tokenFile: natsTokenFile } : {}),
    ...(natsCaFile !== undefined ? { caFile: natsCaFile } : {}),
    ...(natsCertFile !== undefined ? { certFile: natsCertFile } : {}),
    ...(natsKeyFile !== undefined ? { keyFile: natsKeyFile } : {}),
  };
}

import { forEachBackend, freshDatabase } from "../helpers/backends.js";
import { awsStoreContract } from "./aws-contract.js";
import { chunkStoreContract } from "./chunk-contract.js";
import { clusterStoreContract } from "./cluster-contract.js";
import { jobStoreContract } from "./job-contract.js";
import { keyStoreContract } from "./key-contract.js";
import { notifyStoreContract } from "./notify-contract.js";
import { scalingStoreContract } from "./scaling-contract.js";
import { stateStoreContract } from "./state-contract.js";

// One suite for every backend: the same contract on SQLite and on PostgreSQL (KIKITORI_TEST_BACKEND picks one).
forEachBackend((backend) => {
  const fresh = () => freshDatabase(backend);
  stateStoreContract(backend, fresh);
  notifyStoreContract(backend, fresh);
  scalingStoreContract(backend, fresh);
  awsStoreContract(backend, fresh);
  keyStoreContract(backend, fresh);
  clusterStoreContract(backend, fresh);
  chunkStoreContract(backend, fresh);
  jobStoreContract(backend, fresh);
});

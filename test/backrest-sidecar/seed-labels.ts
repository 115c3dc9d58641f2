/** The labels of seed 004's `db` service example (compose project left to each test). */
export const DB_LABELS = {
  "backrest.enable": "true",
  "backrest.repo": "default",
  "backrest.schedule": "15 3 * * *",
  "backrest.keep": "daily=7,weekly=4,monthly=6",
  "backrest.paths.exclude": "/var/lib/postgresql/data/pg_wal",
  "restic-compose-backup.volumes": "true",
  "restic-compose-backup.quiesce": "true",
  "backrest.pre": "sh -c 'docker stop $SELF'",
  "backrest.post": "sh -c 'docker start $SELF'",
  "com.docker.compose.service": "db",
} as const;

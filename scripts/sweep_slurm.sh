#!/usr/bin/env bash
# A haq sweep as a Slurm job array: array task K runs shard K of N.
# Submit from the repository root (paths in the sweep file are relative to it):
#   sbatch --array=1-8 scripts/sweep_slurm.sh configs/sweep-example.json runs/sweep
# N is the array size (SLURM_ARRAY_TASK_COUNT); the array must start at 1.
# Resubmitting the same array resumes: complete jobs are skipped.
# When every task has finished, merge once:
#   sbatch --dependency=afterok:<array-job-id> --wrap "haq merge runs/sweep --out runs/sweep/merged"
#SBATCH --job-name=haq-sweep
#SBATCH --array=1-8
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --output=haq-sweep-%A_%a.log
set -euo pipefail
sweep=${1:?usage: sbatch --array=1-N $0 SWEEP.json OUT}
out=${2:?usage: sbatch --array=1-N $0 SWEEP.json OUT}
k=${SLURM_ARRAY_TASK_ID:?not running as a Slurm array task}
n=${SLURM_ARRAY_TASK_COUNT:?not running as a Slurm array task}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
haq=${HAQ:-haq}
exec "$haq" sweep "$sweep" --out "$out" --shard "$k/$n"

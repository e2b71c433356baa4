// kikitori's Node-API binding of whisper.cpp (1.9). One Model = one whisper_context with its own
// state, reused by every call (no per-call state allocation). Work runs on libuv's thread pool and
// answers with promises; abort() stops a run between ggml graph computations.
//
// Exposed (see src/whisper/native.ts for the TypeScript view):
//   load(path, {gpu, flashAttn, gpuDevice}) -> Promise<Model>
//   Model.transcribe(pcm Int16Array|Float32Array, params) -> Promise<Result>
//   Model.detectLanguage(pcm, threads) -> Promise<{language, probabilities}>
//   Model.abort(), Model.release(), Model.multilingual
//   loadVad(path, threads) -> Promise<Vad>; Vad.segments(pcm, params) -> Promise<[{start, end}]>
//   quantize(type, Float32Array, nPerRow) -> Uint8Array  (ggml's reference quantizer)
//   systemInfo(), version()
#include <napi.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ggml.h"
#include "whisper.h"

namespace {

void log_callback(ggml_log_level level, const char* text, void*) {
  static const bool verbose = std::getenv("KIKITORI_WHISPER_LOG") != nullptr;
  if (verbose || level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) {
    std::fputs(text, stderr);
  }
}

// 16 kHz mono samples as floats in [-1, 1): Int16Array is converted here (no JavaScript loop).
std::vector<float> read_pcm(const Napi::Value& v) {
  std::vector<float> out;
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), "pcm must be an Int16Array or a Float32Array");
  auto ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() == napi_int16_array) {
    auto a = v.As<Napi::Int16Array>();
    out.resize(a.ElementLength());
    for (size_t i = 0; i < out.size(); i++) out[i] = a[i] / 32768.0f;
  } else if (ta.TypedArrayType() == napi_float32_array) {
    auto a = v.As<Napi::Float32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
  } else {
    throw Napi::TypeError::New(v.Env(), "pcm must be an Int16Array or a Float32Array");
  }
  return out;
}

template <typename T>
T get(const Napi::Object& o, const char* key, T fallback);
template <>
int get(const Napi::Object& o, const char* key, int fallback) {
  auto v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}
template <>
float get(const Napi::Object& o, const char* key, float fallback) {
  auto v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().FloatValue() : fallback;
}
template <>
bool get(const Napi::Object& o, const char* key, bool fallback) {
  auto v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}
template <>
std::string get(const Napi::Object& o, const char* key, std::string fallback) {
  auto v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

struct Constructors {
  Napi::FunctionReference model, vad;
};

struct TokenOut {
  int id;
  std::string text;
  float p, plog;
  int64_t t0, t1;  // ms, only with tokenTimestamps
};

struct SegmentOut {
  int64_t t0, t1;  // ms from the start of the buffer
  std::string text;
  float no_speech_prob;
  std::vector<TokenOut> tokens;
};

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod<&Model::Transcribe>("transcribe"),
                        InstanceMethod<&Model::DetectLanguage>("detectLanguage"),
                        InstanceMethod<&Model::Abort>("abort"), InstanceMethod<&Model::Release>("release"),
                        InstanceAccessor<&Model::Multilingual>("multilingual")});
  }

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    ctx_ = info[0].As<Napi::External<whisper_context>>().Data();
  }
  ~Model() override { Free(); }

  whisper_context* ctx_ = nullptr;
  std::atomic<bool> abort_{false};
  bool busy_ = false;
  bool release_pending_ = false;

  void Free() {
    if (ctx_) whisper_free(ctx_);
    ctx_ = nullptr;
  }
  void Done() {
    busy_ = false;
    if (release_pending_) Free();
  }

 private:
  Napi::Value Transcribe(const Napi::CallbackInfo& info);
  Napi::Value DetectLanguage(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo&) {
    abort_ = true;
    return Env().Undefined();
  }
  Napi::Value Release(const Napi::CallbackInfo&) {
    abort_ = true;
    if (busy_) release_pending_ = true;
    else Free();
    return Env().Undefined();
  }
  Napi::Value Multilingual(const Napi::CallbackInfo&) {
    return Napi::Boolean::New(Env(), ctx_ != nullptr && whisper_is_multilingual(ctx_));
  }
  void Claim(Napi::Env env) {
    if (!ctx_) throw Napi::Error::New(env, "the model was released");
    if (busy_) throw Napi::Error::New(env, "the model is busy: one run at a time per model");
    busy_ = true;
    abort_ = false;
  }
};

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, whisper_context_params params)
      : Napi::AsyncWorker(env), path_(std::move(path)), params_(params), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    ctx_ = whisper_init_from_file_with_params(path_.c_str(), params_);
    if (!ctx_) SetError("whisper.cpp could not load the model " + path_);
  }
  void OnOK() override {
    auto* ctors = Env().GetInstanceData<Constructors>();
    deferred_.Resolve(ctors->model.New({Napi::External<whisper_context>::New(Env(), ctx_)}));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string path_;
  whisper_context_params params_;
  whisper_context* ctx_ = nullptr;
  Napi::Promise::Deferred deferred_;
};

class TranscribeWorker : public Napi::AsyncWorker {
 public:
  TranscribeWorker(Napi::Object self, Model* model, std::vector<float> pcm, const Napi::Object& o)
      : Napi::AsyncWorker(self.Env()), self_(Napi::Persistent(self)), model_(model), pcm_(std::move(pcm)),
        deferred_(self.Env()) {
    const int beam = get(o, "beamSize", 1);
    p_ = whisper_full_default_params(beam > 1 ? WHISPER_SAMPLING_BEAM_SEARCH : WHISPER_SAMPLING_GREEDY);
    p_.beam_search.beam_size = beam;
    p_.greedy.best_of = get(o, "bestOf", 5);
    p_.n_threads = get(o, "threads", 1);
    language_ = get(o, "language", std::string("en"));
    p_.language = language_.c_str();
    p_.translate = get(o, "translate", false);
    prompt_ = get(o, "prompt", std::string());
    p_.initial_prompt = prompt_.empty() ? nullptr : prompt_.c_str();
    p_.no_context = get(o, "noContext", true);
    p_.temperature = get(o, "temperature", 0.0f);
    p_.temperature_inc = get(o, "temperatureInc", 0.2f);
    p_.entropy_thold = get(o, "entropyThold", 2.4f);
    p_.logprob_thold = get(o, "logprobThold", -1.0f);
    p_.no_speech_thold = get(o, "noSpeechThold", 0.6f);
    p_.token_timestamps = get(o, "tokenTimestamps", false);
    p_.max_len = get(o, "maxLen", 0);
    p_.split_on_word = get(o, "splitOnWord", false);
    p_.suppress_blank = get(o, "suppressBlank", true);
    p_.suppress_nst = get(o, "suppressNonSpeech", false);
    p_.audio_ctx = get(o, "audioCtx", 0);
    p_.print_progress = p_.print_realtime = p_.print_timestamps = p_.print_special = false;
    max_passes_ = get(o, "maxPasses", 0);
    p_.encoder_begin_callback = [](whisper_context*, whisper_state*, void* user) {
      auto* w = static_cast<TranscribeWorker*>(user);
      if (w->model_->abort_) return false;
      if (w->max_passes_ > 0 && w->passes_ >= w->max_passes_) {
        w->stopped_early_ = true;
        return false;
      }
      w->passes_++;
      return true;
    };
    p_.encoder_begin_callback_user_data = this;
    p_.abort_callback = [](void* user) { return static_cast<Model*>(user)->abort_.load(); };
    p_.abort_callback_user_data = model_;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    whisper_context* ctx = model_->ctx_;
    whisper_reset_timings(ctx);
    const int rc = whisper_full(ctx, p_, pcm_.data(), (int)pcm_.size());
    if (model_->abort_) return SetError("aborted");
    if (rc != 0) return SetError("whisper_full failed with code " + std::to_string(rc));
    lang_ = whisper_lang_str(whisper_full_lang_id(ctx));
    const int eot = whisper_token_eot(ctx);
    for (int i = 0, n = whisper_full_n_segments(ctx); i < n; i++) {
      SegmentOut s{whisper_full_get_segment_t0(ctx, i) * 10, whisper_full_get_segment_t1(ctx, i) * 10,
                   whisper_full_get_segment_text(ctx, i), whisper_full_get_segment_no_speech_prob(ctx, i), {}};
      for (int j = 0, m = whisper_full_n_tokens(ctx, i); j < m; j++) {
        const whisper_token_data d = whisper_full_get_token_data(ctx, i, j);
        s.tokens.push_back({d.id, d.id < eot ? whisper_full_get_token_text(ctx, i, j) : "", d.p, d.plog,
                            d.t0 * 10, d.t1 * 10});
      }
      segments_.push_back(std::move(s));
    }
    // After one pass whisper.cpp resumes at its last timestamp; if it wanted to go on, the audio after
    // the last segment is not transcribed yet and belongs to the caller's next window.
    const int64_t length_ms = (int64_t)pcm_.size() * 1000 / WHISPER_SAMPLE_RATE;
    consumed_ms_ = stopped_early_ && !segments_.empty() ? segments_.back().t1 : length_ms;
    if (whisper_timings* t = whisper_get_timings(ctx)) {
      timings_ = *t;
      delete t;
    }
  }

  void OnOK() override {
    model_->Done();
    Napi::Env env = Env();
    auto segments = Napi::Array::New(env, segments_.size());
    for (size_t i = 0; i < segments_.size(); i++) {
      const SegmentOut& s = segments_[i];
      auto seg = Napi::Object::New(env);
      seg.Set("t0", (double)s.t0);
      seg.Set("t1", (double)s.t1);
      seg.Set("text", s.text);
      seg.Set("noSpeechProb", s.no_speech_prob);
      auto tokens = Napi::Array::New(env, s.tokens.size());
      for (size_t j = 0; j < s.tokens.size(); j++) {
        const TokenOut& t = s.tokens[j];
        auto tok = Napi::Object::New(env);
        tok.Set("id", t.id);
        tok.Set("text", t.text);
        tok.Set("p", t.p);
        tok.Set("logprob", t.plog);
        tok.Set("t0", (double)t.t0);
        tok.Set("t1", (double)t.t1);
        tokens.Set(j, tok);
      }
      seg.Set("tokens", tokens);
      segments.Set(i, seg);
    }
    auto result = Napi::Object::New(env);
    result.Set("language", lang_);
    result.Set("segments", segments);
    result.Set("consumedMs", (double)consumed_ms_);
    result.Set("encoderPasses", passes_);
    auto timings = Napi::Object::New(env);
    timings.Set("encodeMs", timings_.encode_ms * passes_);
    timings.Set("decodeMsPerStep", timings_.decode_ms);
    timings.Set("batchdMsPerStep", timings_.batchd_ms);
    timings.Set("promptMsPerStep", timings_.prompt_ms);
    timings.Set("sampleMsPerStep", timings_.sample_ms);
    result.Set("timings", timings);
    deferred_.Resolve(result);
  }
  void OnError(const Napi::Error& e) override {
    model_->Done();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::ObjectReference self_;  // keeps the Model alive while the run is in flight
  Model* model_;
  std::vector<float> pcm_;
  Napi::Promise::Deferred deferred_;
  whisper_full_params p_;
  std::string language_, prompt_, lang_;
  int max_passes_ = 0, passes_ = 0;
  bool stopped_early_ = false;
  int64_t consumed_ms_ = 0;
  std::vector<SegmentOut> segments_;
  whisper_timings timings_{};
};

Napi::Value Model::Transcribe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<float> pcm = read_pcm(info[0]);
  Napi::Object params = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  Claim(env);
  auto* w = new TranscribeWorker(Value(), this, std::move(pcm), params);
  w->Queue();
  return w->Promise();
}

class DetectWorker : public Napi::AsyncWorker {
 public:
  DetectWorker(Napi::Object self, Model* model, std::vector<float> pcm, int threads)
      : Napi::AsyncWorker(self.Env()), self_(Napi::Persistent(self)), model_(model), pcm_(std::move(pcm)),
        threads_(threads), deferred_(self.Env()) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    whisper_context* ctx = model_->ctx_;
    if (!whisper_is_multilingual(ctx)) return SetError("the model is English-only: no language to detect");
    if (whisper_pcm_to_mel(ctx, pcm_.data(), (int)pcm_.size(), threads_) != 0) return SetError("mel failed");
    probs_.assign(whisper_lang_max_id() + 1, 0.0f);
    id_ = whisper_lang_auto_detect(ctx, 0, threads_, probs_.data());
    if (model_->abort_) return SetError("aborted");
    if (id_ < 0) SetError("language detection failed with code " + std::to_string(id_));
  }
  void OnOK() override {
    model_->Done();
    auto probs = Napi::Object::New(Env());
    for (int i = 0; i < (int)probs_.size(); i++) probs.Set(whisper_lang_str(i), probs_[i]);
    auto result = Napi::Object::New(Env());
    result.Set("language", whisper_lang_str(id_));
    result.Set("probabilities", probs);
    deferred_.Resolve(result);
  }
  void OnError(const Napi::Error& e) override {
    model_->Done();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::ObjectReference self_;
  Model* model_;
  std::vector<float> pcm_;
  int threads_;
  int id_ = -1;
  std::vector<float> probs_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value Model::DetectLanguage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<float> pcm = read_pcm(info[0]);
  const int threads = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 1;
  Claim(env);
  auto* w = new DetectWorker(Value(), this, std::move(pcm), threads);
  w->Queue();
  return w->Promise();
}

// Silero VAD through whisper.cpp's own implementation (needs a ggml VAD model file).
class Vad : public Napi::ObjectWrap<Vad> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Vad",
                       {InstanceMethod<&Vad::Segments>("segments"), InstanceMethod<&Vad::Release>("release")});
  }
  explicit Vad(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Vad>(info) {
    ctx_ = info[0].As<Napi::External<whisper_vad_context>>().Data();
  }
  ~Vad() override {
    if (ctx_) whisper_vad_free(ctx_);
  }
  whisper_vad_context* ctx_ = nullptr;
  bool busy_ = false;

 private:
  Napi::Value Segments(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (busy_) throw Napi::Error::New(info.Env(), "the VAD model is busy");
    if (ctx_) whisper_vad_free(ctx_);
    ctx_ = nullptr;
    return info.Env().Undefined();
  }
};

class VadWorker : public Napi::AsyncWorker {
 public:
  VadWorker(Napi::Object self, Vad* vad, std::vector<float> pcm, whisper_vad_params params)
      : Napi::AsyncWorker(self.Env()), self_(Napi::Persistent(self)), vad_(vad), pcm_(std::move(pcm)),
        params_(params), deferred_(self.Env()) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    whisper_vad_segments* s = whisper_vad_segments_from_samples(vad_->ctx_, params_, pcm_.data(), (int)pcm_.size());
    if (!s) return SetError("VAD failed");
    for (int i = 0, n = whisper_vad_segments_n_segments(s); i < n; i++)
      spans_.push_back({whisper_vad_segments_get_segment_t0(s, i), whisper_vad_segments_get_segment_t1(s, i)});
    whisper_vad_free_segments(s);
  }
  void OnOK() override {
    vad_->busy_ = false;
    auto out = Napi::Array::New(Env(), spans_.size());
    for (size_t i = 0; i < spans_.size(); i++) {
      auto o = Napi::Object::New(Env());
      // whisper.cpp reports centiseconds.
      o.Set("start", spans_[i].first / 100.0);
      o.Set("end", spans_[i].second / 100.0);
      out.Set(i, o);
    }
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override {
    vad_->busy_ = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::ObjectReference self_;
  Vad* vad_;
  std::vector<float> pcm_;
  whisper_vad_params params_;
  std::vector<std::pair<float, float>> spans_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value Vad::Segments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ctx_) throw Napi::Error::New(env, "the VAD model was released");
  if (busy_) throw Napi::Error::New(env, "the VAD model is busy");
  std::vector<float> pcm = read_pcm(info[0]);
  Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  whisper_vad_params p = whisper_vad_default_params();
  p.threshold = get(o, "threshold", p.threshold);
  p.min_speech_duration_ms = get(o, "minSpeechMs", p.min_speech_duration_ms);
  p.min_silence_duration_ms = get(o, "minSilenceMs", p.min_silence_duration_ms);
  p.max_speech_duration_s = get(o, "maxSpeechSeconds", p.max_speech_duration_s);
  p.speech_pad_ms = get(o, "speechPadMs", p.speech_pad_ms);
  p.samples_overlap = get(o, "samplesOverlap", p.samples_overlap);
  busy_ = true;
  auto* w = new VadWorker(Value(), this, std::move(pcm), p);
  w->Queue();
  return w->Promise();
}

class VadLoadWorker : public Napi::AsyncWorker {
 public:
  VadLoadWorker(Napi::Env env, std::string path, int threads)
      : Napi::AsyncWorker(env), path_(std::move(path)), threads_(threads), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    whisper_vad_context_params p = whisper_vad_default_context_params();
    p.n_threads = threads_;
    p.use_gpu = false;
    ctx_ = whisper_vad_init_from_file_with_params(path_.c_str(), p);
    if (!ctx_) SetError("whisper.cpp could not load the VAD model " + path_);
  }
  void OnOK() override {
    auto* ctors = Env().GetInstanceData<Constructors>();
    deferred_.Resolve(ctors->vad.New({Napi::External<whisper_vad_context>::New(Env(), ctx_)}));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string path_;
  int threads_;
  whisper_vad_context* ctx_ = nullptr;
  Napi::Promise::Deferred deferred_;
};

Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  whisper_context_params p = whisper_context_default_params();
  p.use_gpu = get(o, "gpu", false);
  p.flash_attn = get(o, "flashAttn", true);
  p.gpu_device = get(o, "gpuDevice", 0);
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), p);
  w->Queue();
  return w->Promise();
}

Napi::Value LoadVad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  const int threads = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 1;
  auto* w = new VadLoadWorker(env, info[0].As<Napi::String>().Utf8Value(), threads);
  w->Queue();
  return w->Promise();
}

// ggml's reference quantizer (ggml_quantize_chunk) over rows of n_per_row floats: the yardstick that
// kikitori's TypeScript quantizer must match byte for byte.
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  auto src = info[1].As<Napi::Float32Array>();
  const int64_t n_per_row = info[2].As<Napi::Number>().Int64Value();
  int type = -1;
  for (int t = 0; t < GGML_TYPE_COUNT; t++) {
    const char* tn = ggml_type_name((ggml_type)t);
    if (tn && name == tn && ggml_blck_size((ggml_type)t) > 0) type = t;
  }
  if (type < 0) throw Napi::Error::New(env, "unknown ggml type " + name);
  const int64_t n = (int64_t)src.ElementLength();
  if (n_per_row <= 0 || n % n_per_row != 0 || n_per_row % ggml_blck_size((ggml_type)type) != 0)
    throw Napi::RangeError::New(env, "rows do not divide into the type's blocks");
  const int64_t rows = n / n_per_row;
  auto out = Napi::Uint8Array::New(env, ggml_row_size((ggml_type)type, n_per_row) * rows);
  ggml_quantize_chunk((ggml_type)type, src.Data(), out.Data(), 0, rows, n_per_row, nullptr);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  whisper_log_set(log_callback, nullptr);
  auto* ctors = new Constructors{Napi::Persistent(Model::Define(env)), Napi::Persistent(Vad::Define(env))};
  env.SetInstanceData<Constructors>(ctors);
  exports.Set("load", Napi::Function::New(env, Load));
  exports.Set("loadVad", Napi::Function::New(env, LoadVad));
  exports.Set("quantize", Napi::Function::New(env, Quantize));
  exports.Set("systemInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
                return Napi::String::New(i.Env(), whisper_print_system_info());
              }));
  exports.Set("version", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
                return Napi::String::New(i.Env(), whisper_version());
              }));
  return exports;
}

}  // namespace

NODE_API_MODULE(kikitori_whisper, Init)

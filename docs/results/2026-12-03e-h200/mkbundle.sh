set -e
rm -rf .dev/bundle .dev/data
bash ../shared/tools/device-bundle.sh .dev/bundle build/bin/{kitty_cuda_gpu_test,cuda_runner_gpu_test,engine_gpu_test,model_ops_gpu_test,kitty_attention_bench,kitty-bench} $EXTRA >/dev/null
mkdir -p .dev/data && cp -r ../shared/data/{stories260K,tiny-hf} .dev/data/
rm -f .dev/carry/b.tar.xz && tar -cJf .dev/carry/b.tar.xz -C .dev bundle data && rm -rf .dev/bundle .dev/data
ls -la .dev/carry

# Sourced by the postgres image's entrypoint during the first start only, while its
# init server listens on the local socket alone.
echo "slow init: 8 s"
sleep 8

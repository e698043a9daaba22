"""Describing a photo in words: a caption, a few open-vocabulary tags, and answers to questions.

A vision-language model is an optional stage after recognition. The port (`base.Describer`) and
its value types (`types`) live here like the recognizer's; the two backends are
`bedrock.BedrockDescriber` (Amazon Bedrock's Converse API) and `openai_compat.OpenAIDescriber`
(any OpenAI-compatible `/v1/chat/completions` server). Import the backends from their modules:
this package stays light so the value types can be used without boto3 or aiohttp loaded.
"""
